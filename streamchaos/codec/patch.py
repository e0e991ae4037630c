"""Patch numeric fields inside Avro bytes without decoding the record.

Decoding and re-encoding a whole record costs ~10 µs in fastavro; finding fields by
skipping the ones before them and rewriting their bytes costs a fraction of that.
``Spans`` (int/long/float/double fields; a varint that changes length is spliced) is
built once per writer schema. It works for records whose fields before the targets are
primitives, enums, fixed or unions of those (the common flat feature record) and is None
otherwise, so callers fall back to the full decode.

The skipping is ``codec.avro_binary``'s; the plan's compiled reader and writer are
``codec.compiled``'s.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streamchaos.codec.avro_binary import Skip, fixed_width, skipper
from streamchaos.codec.compiled import compile_reader, compile_writer, encoder
from streamchaos.codec.mutate import INT_RANGE, NUMERIC
from streamchaos.codec.wire import HEADER_SIZE, Undecodable
from streamchaos.errors import FieldError


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
        self.ints = [i for i, kind in enumerate(self.kinds) if kind in INT_RANGE]
        # schema order: (target's index in names, kind) or (-1, bytes to skip | skip function)
        self._plan = plan
        self._forwards = [index for index, _ in plan if index >= 0]
        self._encoders = [encoder(kind) for kind in self.kinds]
        self._read: Callable[[bytes, int], list[tuple[int, int, float | int]]] = compile_reader(
            plan, len(names)
        )
        self._write_all: Callable[[bytes, list[Any], list[Any]], bytes] = compile_writer(
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

    def __init__(self, names: list[str], check: Callable[[Any], object]) -> None:
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
