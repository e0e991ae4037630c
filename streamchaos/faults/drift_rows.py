"""A record's features as a row for the ``drift`` fault: read, checked, written back.

A row is decoded (``Decoded``: any codec, re-encoded whole) or a flat Avro record read from
its bytes (``Patched``: its numeric fields rewritten in place, ``codec.patch``); either way
its writer schema is checked against the drift first (and a decoded record's values too),
and new values of Avro ``float`` fields are narrowed to what the field will hold. Kept
apart from the fault module, which holds the config and the orchestration; it defines no
fault, so fault discovery passes it by.
"""

from __future__ import annotations

import struct
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, cast

from streamchaos.codec import mutate
from streamchaos.codec.patch import Spans
from streamchaos.errors import FieldError
from streamchaos.faults.base import Revalued
from streamchaos.faults.drift_features import FeatureDrift

KEEP = object()  # a feature's new value when it stays as it is
_FLOAT_MAX = sys.float_info.max


class Row(ABC):
    """One record's feature values and how to write changed ones back."""

    values: list[Any]
    floats: list[int]  # the features its writer schema holds as Avro ``float``s

    @abstractmethod
    def write(self, news: list[Any]) -> bytes:
        """The record with each feature's new value (``KEEP``: as it is)."""


class Decoded(Row):
    def __init__(
        self, codec: Any, dec: Any, value: dict[str, Any], names: list[str], floats: list[int]
    ) -> None:
        self.codec, self.dec, self.value, self.names = codec, dec, value, names
        self.floats = floats
        self.values = [value.get(name) for name in names]

    def write(self, news: list[Any]) -> bytes:
        value = dict(self.value)
        for name, new in zip(self.names, news, strict=True):
            if new is not KEEP:
                value[name] = new  # one its field cannot hold: refused by the encode
        return bytes(self.codec.encode(value, self.dec.schema, self.dec.schema_id))


class Patched(Row):
    """A flat Avro record whose numeric fields are rewritten in its bytes."""

    def __init__(
        self, data: bytes, located: Spans, found: list[tuple[int, int, float | int]]
    ) -> None:
        self.data, self.located, self.found = data, located, found
        self.floats = located.floats
        self.values = [v for _, _, v in found]

    def write(self, news: list[Any]) -> bytes:
        if KEEP in news:  # no nulls here (not patchable): None means "keep" to ``Spans``
            news = [None if n is KEEP else n for n in news]
        return self.located.rewrite(self.data, self.found, news)


_FLOAT32 = struct.Struct("<f")


def as_float32(value: float) -> float:
    """What an Avro ``float`` field holds of ``value`` (a 24-bit mantissa): the ledger then
    says what the shadow holds, and a change too small for the field is none."""
    try:
        return cast(float, _FLOAT32.unpack(_FLOAT32.pack(value))[0])
    except OverflowError as exc:
        raise FieldError("out_of_range", f"{value} does not fit an Avro float") from exc


def narrowed(news: Sequence[Any], floats: list[int]) -> Sequence[Any]:
    """``news`` with the values of ``floats`` features as an Avro ``float`` holds them."""
    if not floats:
        return news
    out = list(news)
    for f in floats:
        if out[f] is not KEEP and out[f] is not None:
            out[f] = as_float32(out[f])
    return out


def written(row: Row, olds: Any, kept: list[Any], intensity: float) -> Revalued:
    """``row`` with its changed features written, and the note ``describe`` reads; None
    when no feature changed (``kept``: new values, ``KEEP`` for unchanged ones)."""
    if kept.count(KEEP) == len(kept):
        return None
    return row.write(kept), (intensity, olds, kept)


def decoded(
    codec: Any,
    data: bytes | None,
    features: dict[str, FeatureDrift],
    check: Callable[[Any], list[int]],
) -> Decoded:
    """The record, decoded, with its feature values. ``check`` validates its writer
    schema and says its float features."""
    dec = codec.decode(data)
    if not isinstance(dec.value, dict):
        raise FieldError("not_a_record", "the value is not a record")
    floats = check(dec.schema)
    value = dec.value
    names = list(features)
    for name in names:
        if name not in value:
            raise FieldError("unknown_field", f"field {name!r} is not in the record")
    row = Decoded(codec, dec, value, names, floats)
    check_values(features, row.values)
    return row


# -- what a schema or a record must be for its drift -------------------------------


def checked_floats(features: dict[str, FeatureDrift], schema: Any) -> list[int]:
    """The features a writer schema holds as Avro ``float``s, once its fields are found
    to suit their drift (a ``FieldError`` when one does not)."""
    fields = mutate.fields(schema.raw)
    for name, spec in features.items():
        if name not in fields:
            raise FieldError("unknown_field", f"field {name!r} is not in the writer schema")
        kind = mutate.type_name(fields[name]["type"])
        if spec.numeric and kind not in mutate.NUMERIC:
            raise FieldError("wrong_type", f"numeric drift on {name!r} of type {kind}")
        if spec.null_rate and not mutate.nullable(fields[name]["type"]):
            raise FieldError("wrong_type", f"null_rate on non-nullable field {name!r}")
    return [
        f for f, name in enumerate(features) if mutate.type_name(fields[name]["type"]) == "float"
    ]


def check_values(features: dict[str, FeatureDrift], values: list[Any]) -> None:
    """Values a schema did not vouch for (JSON, unions) must suit their drift."""
    for (name, spec), v in zip(features.items(), values, strict=True):
        if v is None:
            continue
        if spec.numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise FieldError("wrong_type", f"{name!r} is a {type(v).__name__}, not a number")
        if spec.numeric and isinstance(v, int) and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
            # caught here, per record: in the batch's numpy column it would fail them all
            raise FieldError("out_of_range", f"{name!r} is {v}, beyond a float64")
        if not spec.numeric and not isinstance(v, (str, int, float)):
            raise FieldError("wrong_type", f"{name!r} is a {type(v).__name__}, not a category")
