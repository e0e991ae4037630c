"""JSON text, fast where it is exact: orjson, and the standard library where orjson would
read or write something else (NaN and ±inf, integers beyond 64 bits, ...).

Used for JSON record values (``JsonCodec``) and for ledger lines: both are on the path of
every selected record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

# Digits and "-" map to "0": a run of 20 is an integer orjson may read as a float (beyond
# [-2**63, 2**64 - 1]: 20 digits, or "-" and 19) or harmless (a long string or float).
_DIGITS_TO_ZERO = bytes.maketrans(b"-0123456789", b"0" * 11)
_LONG_RUN = b"0" * 20
# refused (TypeError, then refused by json too) rather than written as orjson would
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_NOT_FLOATS = frozenset((str, int, bool, type(None)))
_ENCODERS: dict[Any, tuple[json.JSONEncoder, json.JSONEncoder]] = {}


def exact(data: bytes) -> bool:
    """orjson reads ``data`` as ``json`` would (no integer it would round to a float)."""
    return data.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) < 0


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON, keys in order, non-ASCII text as it is; NaN and ±inf written
    as ``NaN``/``Infinity`` (as ``json.dumps`` writes them: orjson writes ``null``).
    ``default``: how to write a value JSON has no type for."""
    try:
        out = orjson.dumps(value, default=default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:  # an int beyond 64 bits, a non-str key, a surrogate...
        return _stdlib(value, default)
    if out.find(b"null") >= 0 and _has_non_finite(value):  # orjson wrote NaN/inf as null
        return _stdlib(value, default)
    return out


def _stdlib(value: Any, default: Callable[[Any], Any] | None) -> bytes:
    """What orjson would write, by ``json`` (non-ASCII unescaped, like orjson; escaped
    only where UTF-8 cannot carry it: a lone surrogate), with the encoders built once
    (0.8 µs of its 3.3 µs on a 200-byte record)."""
    raw, escaped = _encoders(default)
    try:
        return raw.encode(value).encode()
    except UnicodeEncodeError:
        return escaped.encode(value).encode()


def _encoders(default: Callable[[Any], Any] | None) -> tuple[json.JSONEncoder, json.JSONEncoder]:
    pair = _ENCODERS.get(default)
    if pair is None:
        sep = (",", ":")
        raw = json.JSONEncoder(separators=sep, allow_nan=True, ensure_ascii=False, default=default)
        escaped = json.JSONEncoder(separators=sep, allow_nan=True, default=default)
        pair = _ENCODERS[default] = (raw, escaped)
    return pair


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or ±inf float is anywhere in ``value`` (in dicts, lists, tuples)."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return isinstance(value, float) and not math.isfinite(value)
    for v in value:  # exact type checks first: a flat record costs ~50 ns a field
        kind = type(v)
        if kind is float:
            if v - v != 0.0:  # NaN - NaN and inf - inf are NaN
                return True
        elif kind not in _NOT_FLOATS and _has_non_finite(v):
            return True
    return False
