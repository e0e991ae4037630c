"""Confluent wire framing, in one place: magic byte 0, 4-byte big-endian schema id, payload.

Schema breaks corrupt exactly these fields by name (``MAGIC``, the id), so a wire break
means what its name says.
"""

from __future__ import annotations

import struct

MAGIC = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5


class Undecodable(Exception):
    """A record that cannot be decoded; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def split(data: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro payload) of a framed value, or ``Undecodable``."""
    schema_id = header_id(data)
    assert data is not None
    return schema_id, data[HEADER_SIZE:]


def header_id(data: bytes | None) -> int:
    """The schema id in a framed value's header, or ``Undecodable``."""
    if data is None:
        raise Undecodable("tombstone", "null value (tombstone)")
    if len(data) == 0:
        raise Undecodable("empty", "empty value")
    if data[0] != MAGIC:
        raise Undecodable("bad_magic", f"magic byte {data[0]} is not {MAGIC}")
    if len(data) < HEADER_SIZE:
        raise Undecodable("too_short", f"{len(data)} bytes is shorter than the 5-byte header")
    _, schema_id = HEADER.unpack_from(data)
    return int(schema_id)


def frame(schema_id: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + payload
