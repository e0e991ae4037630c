"""Avro's binary encoding, walked without decoding: a function per type that skips one value.

``skipper`` builds one from a schema type (None for a named type used by name, which only the
full decode resolves); ``fixed_width`` says how many bytes a type always takes. ``codec.patch``
skips the fields before the ones it rewrites with these, and ``zigzag_bytes`` encodes the
new int/long values it writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Skip = Callable[[bytes, int], int]


def varint_end(data: bytes, pos: int) -> int:
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


def skip_bytes(data: bytes, pos: int) -> int:
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
    "int": varint_end,
    "long": varint_end,
    "float": _fixed(4),
    "double": _fixed(8),
    "string": skip_bytes,
    "bytes": skip_bytes,
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
                    pos = skip_bytes(data, pos)
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
            return varint_end
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
