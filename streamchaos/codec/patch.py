"""Patch numeric fields inside Avro bytes without decoding the record.

Decoding and re-encoding a whole record costs ~10 µs in fastavro; finding fields by
skipping the ones before them and rewriting their bytes costs a fraction of that.
``Spans`` (int/long/float/double fields; a varint that changes length is spliced) is
built once per writer schema. It works for records whose fields before the targets are
primitives, enums, fixed or unions of those (the common flat feature record) and is None
otherwise, so callers fall back to the full decode.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

from streamchaos.codec.mutate import INT_RANGE, NUMERIC
from streamchaos.codec.wire import HEADER_SIZE, Undecodable
from streamchaos.errors import FieldError

Skip = Callable[[bytes, int], int]

_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


def _varint_end(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def _zigzag(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _skip_bytes(data: bytes, pos: int) -> int:
    first = data[pos]
    if first < 0x80:  # lengths under 64: one byte, no loop
        length, pos = (first >> 1) ^ -(first & 1), pos + 1
    else:
        length, pos = _zigzag(data, pos)
    if length < 0:
        raise IndexError(f"negative length {length}")
    return pos + length


def _fixed(size: int) -> Skip:
    return lambda data, pos: pos + size


def _union(branches: list[Skip]) -> Skip:
    def skip(data: bytes, pos: int) -> int:
        index, pos = _zigzag(data, pos)
        if not 0 <= index < len(branches):
            raise IndexError(f"union branch {index} of {len(branches)}")
        return branches[index](data, pos)

    return skip


PRIMITIVE: dict[str, Skip] = {
    "null": _fixed(0),
    "boolean": _fixed(1),
    "int": _varint_end,
    "long": _varint_end,
    "float": _fixed(4),
    "double": _fixed(8),
    "string": _skip_bytes,
    "bytes": _skip_bytes,
}


def _blocks(item: Skip, entry_key: bool) -> Skip:
    """Array (or map, whose entries start with a string key) blocks up to the 0 count."""

    def skip(data: bytes, pos: int) -> int:
        while True:
            count, pos = _zigzag(data, pos)
            if count == 0:
                return pos
            if count < 0:  # a block that gives its size in bytes
                size, pos = _zigzag(data, pos)
                if size < 0:
                    raise IndexError(f"negative block size {size}")
                pos += size
                continue
            for _ in range(count):
                if entry_key:
                    pos = _skip_bytes(data, pos)
                pos = item(data, pos)

    return skip


def _record(fields: list[Skip]) -> Skip:
    def skip(data: bytes, pos: int) -> int:
        for field in fields:
            pos = field(data, pos)
        return pos

    return skip


FIXED_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}


def fixed_width(ftype: Any) -> int | None:
    """Bytes a value of ``ftype`` always takes, or None if that varies."""
    if isinstance(ftype, str):
        return FIXED_WIDTH.get(ftype)
    if isinstance(ftype, dict):
        kind = ftype.get("type")
        if kind == "fixed":
            return int(ftype["size"])
        if isinstance(kind, str) and kind in FIXED_WIDTH:  # logical types
            return FIXED_WIDTH[kind]
    return None


def skipper(ftype: Any) -> Skip | None:
    """A function that skips one value of ``ftype``, or None (a named type referenced by
    name, which the full decode resolves)."""
    if isinstance(ftype, str):
        return PRIMITIVE.get(ftype)
    if isinstance(ftype, list):
        branches = [skipper(t) for t in ftype]
        if any(b is None for b in branches):
            return None
        return _union([b for b in branches if b is not None])
    if isinstance(ftype, dict):
        kind = ftype.get("type")
        if kind == "enum":
            return _varint_end
        if kind == "fixed":
            return _fixed(int(ftype["size"]))
        if kind in ("array", "map"):
            item = skipper(ftype.get("items" if kind == "array" else "values"))
            return _blocks(item, kind == "map") if item is not None else None
        if kind == "record":
            fields = [skipper(f["type"]) for f in ftype.get("fields", [])]
            return _record([f for f in fields if f is not None]) if None not in fields else None
        if isinstance(kind, (str, list, dict)):  # logical types, or a type given as "type"
            return skipper(kind)
    return None


def zigzag_bytes(value: int) -> bytes:
    """Avro's encoding of an int/long: zigzag, then a little-endian base-128 varint."""
    n = (value << 1) ^ (value >> 63)
    if n < 0x4000:  # up to two bytes (|value| < 8192): no loop
        return bytes((n,)) if n < 0x80 else bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Spans:
    """Several top-level numeric fields of a record: read them in one pass, rewrite some.

    ``read`` returns each target's (start, end, value) in ``names`` order; ``write`` puts
    new values (None: keep) into those byte ranges and returns the new payload. ``read``
    is compiled from the plan (a function per writer schema, with the common skips
    inline): a selected record is read on the bridge's hot path, and a generic loop over
    the plan costs twice as much.
    """

    def __init__(self, names: list[str], plan: list[tuple[int, Skip | str | int]]) -> None:
        self.names = names
        self.kinds: list[str] = [""] * len(names)
        for index, step in plan:
            if index >= 0:
                self.kinds[index] = str(step)
        self.floats = [i for i, kind in enumerate(self.kinds) if kind == "float"]
        # schema order: (target's index in names, kind) or (-1, bytes to skip | skip function)
        self._plan = plan
        self._forwards = [index for index, _ in plan if index >= 0]
        self._encoders = [_encoder(kind) for kind in self.kinds]
        self._read: Callable[[bytes, int], list[tuple[int, int, float | int]]] = _compile(
            plan, len(names)
        )
        self._write_all: Callable[[bytes, list[Any], list[Any]], bytes] = _compile_writer(
            plan, self.kinds
        )

    def read(self, payload: bytes, start: int = 0) -> list[tuple[int, int, float | int]]:
        """Each target's (start, end, value); the record begins at ``payload[start]`` and
        must end where the payload does (what the full decode checks too)."""
        return self._read(payload, start)

    def read_record(self, data: bytes, start: int = 0) -> list[tuple[int, int, float | int]]:
        """``read`` for a fault: bytes that are not valid Avro are ``Undecodable``."""
        try:
            return self._read(data, start)
        except (IndexError, struct.error) as exc:
            raise Undecodable("avro_error", f"not valid Avro for its schema: {exc}") from exc

    def rewrite(
        self, data: bytes, spans: list[tuple[int, int, float | int]], values: list[Any]
    ) -> bytes:
        """``write`` for a fault: a value its field cannot hold is a ``FieldError``."""
        try:
            if None not in values:  # ``write``'s own shortcut, one call fewer per record
                return self._write_all(data, spans, values)
            return self.write(data, spans, values)
        except OverflowError as exc:
            raise FieldError("out_of_range", str(exc)) from exc

    def write(
        self,
        payload: bytes,
        spans: list[tuple[int, int, float | int]],
        values: list[float | int | None],
    ) -> bytes:
        if None not in values:  # every target changes: one compiled expression
            return self._write_all(payload, spans, values)
        pieces: list[bytes] = []
        last, encoders = 0, self._encoders
        for index in self._forwards:  # the payload's bytes between new values stay as they are
            value = values[index]
            if value is not None:
                start, end, _ = spans[index]
                pieces += (payload[last:start], encoders[index](value))
                last = end
        pieces.append(payload[last:])
        return b"".join(pieces)


FIXED_FORMAT = {"double": "d", "float": "f"}


def _groups(plan: list[tuple[int, Skip | str | int]]) -> list[list[tuple[int, Any]]]:
    """The plan with each run of adjacent fixed-width targets (doubles, floats) as one
    group, so one ``struct`` call reads or writes them all; other steps stand alone."""
    out: list[list[tuple[int, Any]]] = []
    for index, step in plan:
        fixed = index >= 0 and step in FIXED_FORMAT
        last = out[-1] if out else None
        if fixed and last and last[0][0] >= 0 and last[0][1] in FIXED_FORMAT:
            last.append((index, step))
        else:
            out.append([(index, step)])
    return out


def _packing(group: list[tuple[int, Any]]) -> struct.Struct:
    """The ``struct`` layout of a group of adjacent fixed-width targets (``_groups``)."""
    return struct.Struct("<" + "".join(FIXED_FORMAT[str(kind)] for _, kind in group))


def _compile(plan: list[tuple[int, Skip | str | int]], count: int) -> Callable[..., Any]:
    """The plan as one function ``read(p, pos)``: the same steps, skips and checks (an
    out-of-bounds read raises IndexError or struct.error, as the skip functions do). Only
    numbers and fixed names go into the source, never text from a schema."""
    env: dict[str, Any] = {"sb": _skip_bytes}
    lines = ["def read(p, pos):"]
    for k, group in enumerate(_groups(plan)):
        index, step = group[0]
        if index >= 0 and step in FIXED_FORMAT:  # adjacent doubles/floats: one unpack
            env[f"U{k}"] = _packing(group).unpack_from
            names = ", ".join(f"v{i}" for i, _ in group) + ","
            lines.append(f"    {names} = U{k}(p, pos)")
            offset = 0
            for i, kind in group:
                width = 8 if kind == "double" else 4
                lines += [f"    a{i} = pos + {offset}", f"    e{i} = pos + {offset + width}"]
                offset += width
            lines.append(f"    pos += {offset}")
        elif index >= 0:  # int/long: the varint inline
            lines += [f"    a{index} = pos", "    n = 0", "    s = 0", "    while True:"]
            lines += ["        b = p[pos]", "        pos += 1", "        n |= (b & 0x7F) << s"]
            lines += ["        if b < 0x80:", "            break", "        s += 7"]
            lines += [f"    v{index} = (n >> 1) ^ -(n & 1)", f"    e{index} = pos"]
        elif type(step) is int:
            lines.append(f"    pos += {step}")
        elif step is _skip_bytes:  # lengths under 8192 (one or two bytes): no call
            lines += ["    b = p[pos]", "    if b < 0x80:", "        if b & 1:"]
            lines += ["            pos = sb(p, pos)", "        else:"]
            lines += ["            pos += 1 + (b >> 1)", "    else:", "        c = p[pos + 1]"]
            lines += ["        if c < 0x80 and not b & 1:"]
            lines += ["            pos += 2 + (((b & 0x7F) | (c << 7)) >> 1)", "        else:"]
            lines += ["            pos = sb(p, pos)"]
        elif step is _varint_end:
            lines += ["    while p[pos] & 0x80:", "        pos += 1", "    pos += 1"]
        else:
            env[f"s{k}"] = step
            lines.append(f"    pos = s{k}(p, pos)")
    lines += [
        "    if pos != len(p):",
        "        raise IndexError(f'record of {len(p)} bytes, schema says {pos}')",
        "    return [" + ", ".join(f"(a{i}, e{i}, v{i})" for i in range(count)) + "]",
    ]
    exec("\n".join(lines), env)  # generated from the plan above only
    return cast(Callable[..., Any], env["read"])


def _compile_writer(
    plan: list[tuple[int, Skip | str | int]], kinds: list[str]
) -> Callable[..., Any]:
    """``Spans.write`` when every target gets a new value, as one function
    ``write_all(p, s, v)``: the payload's slices between the targets, and the targets'
    encodings (adjacent doubles/floats packed by one ``struct`` call), joined once."""
    env: dict[str, Any] = {}
    parts: list[str] = []
    last = "0"  # where the payload's next unchanged slice starts
    for k, group in enumerate(g for g in _groups(plan) if g[0][0] >= 0):
        first, final = group[0][0], group[-1][0]
        parts.append(f"p[{last}:s[{first}][0]]")
        if group[0][1] in FIXED_FORMAT:
            env[f"P{k}"] = _packing(group).pack
            parts.append(f"P{k}(" + ", ".join(f"v[{i}]" for i, _ in group) + ")")
        else:
            env[f"E{k}"] = _encoder(kinds[first])
            parts.append(f"E{k}(v[{first}])")
        last = f"s[{final}][1]"
    parts.append(f"p[{last}:]")
    source = "def write_all(p, s, v):\n    return b''.join((" + ", ".join(parts) + "))"
    exec(source, env)  # generated from the plan's indices and fixed names only
    return cast(Callable[..., Any], env["write_all"])


def _encoder(kind: str) -> Callable[[Any], bytes]:
    if kind == "double":
        return _DOUBLE.pack
    if kind == "float":
        return _FLOAT.pack
    low, high = INT_RANGE[kind]

    def encode(value: float | int) -> bytes:
        number = int(value)
        if not low <= number <= high:
            raise OverflowError(f"{number} does not fit an Avro {kind}")
        return zigzag_bytes(number)

    return encode


def spans(schema: Any, names: list[str]) -> Spans | None:
    """``Spans`` for top-level int/long/float/double fields ``names``, or None when the
    full decode must do it (a target in a union or with a logical type, a named type
    used by name)."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    if len(set(names)) != len(names):
        return None
    wanted = {name: i for i, name in enumerate(names)}
    plan: list[tuple[int, Skip | str | int]] = []
    for field in schema.get("fields", []):  # all of them: the record's end is checked
        ftype = field["type"]
        index = wanted.pop(field["name"], None)
        if index is not None:
            kind = ftype if isinstance(ftype, str) else None
            if kind not in NUMERIC:
                return None  # logical types, unions: the full decode handles them
            plan.append((index, kind))
            continue
        width = fixed_width(ftype)
        if width is not None:  # consecutive fixed-width fields: one addition
            last = plan[-1] if plan else None
            if last is not None and last[0] < 0 and type(last[1]) is int:
                plan[-1] = (-1, last[1] + width)
            else:
                plan.append((-1, width))
            continue
        skip = skipper(ftype)
        if skip is None:
            return None
        plan.append((-1, skip))
    return Spans(names, plan) if not wanted else None


class Layouts:
    """``spans(writer schema, names)`` per writer schema, found from a record's bytes.

    A framed record names its writer schema in its 5-byte header: once a header has been
    located, its ``Spans`` is one dict lookup away (``AvroCodec.locate`` costs three times
    that, on every selected record). ``check`` validates a writer schema's fields before
    its first use, and raises for one that does not suit the fault.
    """

    def __init__(self, names: list[str], check: Callable[[Any], None]) -> None:
        self.names = names
        self._check = check
        self._by_head: dict[bytes, tuple[Spans | None, int]] = {}
        self._by_schema: dict[tuple[int | None, int], Spans | None] = {}

    def find(self, codec: Any, data: bytes | None) -> tuple[Spans | None, int]:
        """(``Spans`` or None when the full decode must do it, where the payload starts);
        ``Undecodable`` for what ``codec.locate`` refuses."""
        if data and codec.local is None:
            found = self._by_head.get(data[:HEADER_SIZE])
            if found is not None:
                return found
        schema_id, schema, start = codec.locate(data)
        key = (schema_id, id(schema))
        if key not in self._by_schema:
            self._check(schema)
            self._by_schema[key] = spans(schema.raw, self.names)
        found = (self._by_schema[key], start)
        if schema_id is not None and data:
            self._by_head[data[:HEADER_SIZE]] = found
        return found
