"""Decode and encode one record's value: Avro (Confluent framing or a local schema) or JSON.

Only records a fault selects go through here; everything else stays raw bytes.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson

from streamchaos.codec import jsontext
from streamchaos.codec.mutate import out_of_range
from streamchaos.codec.registry import ParsedSchema, Registry
from streamchaos.codec.wire import HEADER_SIZE, Undecodable, frame, header_id
from streamchaos.errors import CodecError, FieldError


@dataclass
class Decoded:
    """A decoded value and how it was written (schema id None: local schema or JSON)."""

    value: Any
    schema: ParsedSchema | None
    schema_id: int | None


class Codec(ABC):
    """The codec of one route: ``decode(bytes) -> Decoded``, ``encode(...) -> bytes``."""

    format = "bytes"
    registry: Registry | None = None

    @abstractmethod
    def decode(self, data: bytes | None) -> Decoded: ...

    @abstractmethod
    def encode(self, value: Any, schema: ParsedSchema | None, schema_id: int | None) -> bytes: ...


class BytesCodec(Codec):
    """``format: bytes``: values are opaque, so nothing is decoded (value faults are refused
    for such routes at load time)."""

    def decode(self, data: bytes | None) -> Decoded:
        raise Undecodable("not_decodable", "route format is bytes")

    def encode(self, value: Any, schema: ParsedSchema | None, schema_id: int | None) -> bytes:
        if not isinstance(value, bytes):
            raise CodecError(f"a bytes route can only carry bytes, not {type(value).__name__}")
        return value


class AvroCodec(Codec):
    """Confluent-framed Avro with a registry, or schemaless Avro with a local schema file."""

    format = "avro"

    def __init__(self, registry: Registry | None, local: ParsedSchema | None = None) -> None:
        if registry is None and local is None:
            raise ValueError("an avro route needs schema_registry.url or a schema_file")
        self.registry = registry
        self.local = local

    def decode(self, data: bytes | None) -> Decoded:
        schema_id, schema, start = self.locate(data)
        assert data is not None  # locate refuses tombstones
        return Decoded(_read(schema, data[start:]), schema, schema_id)

    def locate(self, data: bytes | None) -> tuple[int | None, ParsedSchema, int]:
        """(schema id, writer schema, where the Avro payload starts in ``data``), without
        decoding or copying it (for rewrites in place)."""
        if self.local is not None:
            if not data:
                raise Undecodable("tombstone" if data is None else "empty")
            return None, self.local, 0
        assert self.registry is not None
        schema_id = header_id(data)
        return schema_id, self.registry.schema(schema_id), HEADER_SIZE

    def encode(self, value: Any, schema: ParsedSchema | None, schema_id: int | None) -> bytes:
        """Avro (framed when ``schema_id``); a value a field cannot hold is a FieldError."""
        assert schema is not None
        if schema.ints and isinstance(value, dict):
            why = out_of_range(schema.ints, value)
            if why is not None:
                raise FieldError("out_of_range", why)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema.parsed, value)
        payload = buf.getvalue()
        return payload if schema_id is None else frame(schema_id, payload)


def _read(schema: ParsedSchema, payload: bytes) -> Any:
    buf = io.BytesIO(payload)
    try:
        value = fastavro.schemaless_reader(buf, schema.parsed, None, return_record_name=False)
    except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
        raise Undecodable("avro_error", f"not valid Avro for its schema: {exc}") from exc
    if buf.tell() != len(payload):
        raise Undecodable("avro_error", f"{len(payload) - buf.tell()} trailing bytes")
    return value


class JsonCodec(Codec):
    """``format: json``: UTF-8 JSON values, read and written with orjson (a round trip of a
    200-byte record about 4x faster than with ``json``), and with ``json`` where orjson
    would differ.

    Reading: ``orjson.loads``; a value orjson refuses is read by ``json.loads`` as before
    (``NaN``/``Infinity``/``-Infinity`` tokens, numbers beyond the float range, a UTF-8 BOM,
    UTF-16/32, escaped lone surrogates), and one neither reads is ``not_json``. orjson reads
    integers beyond 64 bits as floats, silently, so a value with 20 digits or minus signs in
    a row (also inside a string: cheap, and only slower) goes to ``json.loads`` directly.

    Writing: ``jsontext.dumps``: orjson, compact, keys in the value's order; a value orjson
    would write otherwise (NaN and ±inf, which it writes as ``null``; integers beyond 64
    bits, non-string keys, lone surrogates, which it refuses) goes through ``json``, so
    ``corrupt mode: nan`` still writes ``NaN``.

    Bytes that differ from the old ``json.dumps`` output, each decoding to an equal value:
    non-ASCII text and U+007F raw in UTF-8, not escaped (``"é"``, not ``"\\u00e9"``);
    one-digit float exponents unpadded (``1e-7``, not ``1e-07``); floats in [1e-5, 1e-4)
    in plain notation (``0.00001``, not ``1e-05``). Like before, datetimes and dataclasses
    are refused (TypeError); unlike before, ``uuid.UUID`` and ``enum.Enum`` values are
    written (as their string and value); neither comes out of decoding or a fault.
    """

    format = "json"

    def decode(self, data: bytes | None) -> Decoded:
        if not data:
            raise Undecodable("tombstone" if data is None else "empty")
        if jsontext.exact(data):  # no integer orjson would round
            try:
                return Decoded(orjson.loads(data), None, None)
            except orjson.JSONDecodeError:
                pass  # maybe NaN or something else only json reads: it says
        try:
            return Decoded(json.loads(data), None, None)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Undecodable("not_json", str(exc)) from exc

    def encode(self, value: Any, schema: ParsedSchema | None, schema_id: int | None) -> bytes:
        return jsontext.dumps(value)


def codec_for(fmt: str, registry: Registry | None, schema_file: Path | None) -> Codec:
    if fmt == "avro":
        local = ParsedSchema.of(json.loads(schema_file.read_text())) if schema_file else None
        return AvroCodec(registry, local)
    if fmt == "json":
        return JsonCodec()
    return BytesCodec()
