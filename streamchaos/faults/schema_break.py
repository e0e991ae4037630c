"""``schema_break``: records that break the consumer's contract with the producer.

Wire breaks corrupt the Confluent framing or the Avro bytes: ``bad_magic``,
``unknown_schema_id``, ``truncate``, ``append_garbage``, ``bit_flip``. Contract breaks
emit *valid* Avro under a newly registered schema (subject ``<shadow>-value`` with
compatibility NONE, or ``subject``; never a source subject): ``drop_field``,
``rename_field``, ``change_type``, ``make_nullable`` (and emit null),
``unknown_enum_symbol``, ``old_version`` (an older registered version of the source's
``<source>-value`` subject).

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = SchemaBreak(SchemaBreakConfig(mode="truncate"), random.Random(1))
>>> framed = b"\\x00\\x00\\x00\\x00\\x01" + b"\\x02\\x04\\x06"  # magic byte, schema id 1, payload
>>> [action] = fault.act(picks_of([Record("t", 0, 1, None, framed)]), 0)
>>> action.value, action.injection.detail
(b'\\x00\\x00\\x00\\x00\\x01\\x02', {'mode': 'truncate', 'old_length': 8, 'length': 6})
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from streamchaos.codec import mutate
from streamchaos.codec.wire import HEADER_SIZE, Undecodable, frame, split
from streamchaos.errors import FieldError
from streamchaos.faults.actions import Action
from streamchaos.faults.base import FaultConfig, ValueFault
from streamchaos.faults.picks import Picks

WIRE = ("bad_magic", "unknown_schema_id", "truncate", "append_garbage", "bit_flip")
CONTRACT = (
    "drop_field",
    "rename_field",
    "change_type",
    "make_nullable",
    "unknown_enum_symbol",
    "old_version",
)
UNKNOWN_ID = 0x7FFF0000  # far above any id a registry hands out
ENUM_SYMBOL = "STREAMCHAOS_UNKNOWN"
CASTS = {"string": str, "long": int, "int": int, "double": float, "float": float, "boolean": bool}


class SchemaBreakConfig(FaultConfig):
    type: Literal["schema_break"] = "schema_break"
    example: ClassVar[dict[str, Any]] = {"mode": "rename_field", "field": "amount", "to": "amt"}
    mode: Literal[WIRE + CONTRACT] = "bad_magic"  # type: ignore[valid-type]
    field: str | None = Field(default=None, description="contract breaks: the field to break")
    to: str | None = Field(  # validated below: a field name, or an Avro primitive type
        default=None,
        description="rename_field: new name; change_type: new Avro type (default string)",
    )
    subject: str | None = Field(
        default=None, description="subject for new schemas (default <shadow>-value)"
    )

    @model_validator(mode="after")
    def _needs_field(self) -> SchemaBreakConfig:
        if self.mode in CONTRACT and self.mode != "old_version" and not self.field:
            raise ValueError(f"mode {self.mode} needs a field")
        if self.mode == "change_type" and self.to is not None and self.to not in CASTS:
            raise ValueError(f"to: {self.to!r} is not one of {sorted(CASTS)}")
        return self


class SchemaBreak(ValueFault):
    Config = SchemaBreakConfig
    purpose = "wire breaks, and contract breaks: valid Avro under a newly registered schema"
    config: SchemaBreakConfig

    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        if self.config.mode in WIRE:
            value, detail = self._wire(picks.items[i].value)
        else:
            value, detail = self._contract(picks, i)
        return self.new_value(value, {"mode": self.config.mode, **detail})

    def _wire(self, data: bytes | None) -> tuple[bytes, dict[str, Any]]:
        schema_id, payload = split(data)  # only framed values can be broken on the wire
        assert data is not None
        mode, rng = self.config.mode, self.rng
        if mode == "bad_magic":
            magic = rng.randrange(1, 256)
            return bytes([magic]) + data[1:], {"magic": magic}
        if mode == "unknown_schema_id":
            new_id = UNKNOWN_ID + rng.randrange(0xFFFF)
            return frame(new_id, payload), {"old_schema_id": schema_id, "schema_id": new_id}
        if mode == "truncate":
            keep = rng.randrange(0, max(1, len(payload)))
            return data[: HEADER_SIZE + keep], {
                "old_length": len(data),
                "length": HEADER_SIZE + keep,
            }
        if mode == "append_garbage":
            garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
            return data + garbage, {"garbage_bytes": len(garbage)}
        if not payload:
            raise Undecodable("empty", "no payload to flip")
        bit = rng.randrange(len(payload) * 8)
        flipped = bytearray(data)
        flipped[HEADER_SIZE + bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped), {"bit": bit}

    def reset(self) -> None:
        self._variants: dict[tuple[int | None, int], tuple[Any, int | None]] = {}

    def _contract(self, picks: Picks, i: int) -> tuple[bytes, dict[str, Any]]:
        codec = self.ctx.codec
        dec = picks.decode(i)
        if dec.schema is None:
            raise FieldError("not_avro", "contract breaks need an Avro route")
        if self.config.mode == "old_version":
            return self._old_version(dec)
        name = self.config.field
        assert name is not None
        key = (dec.schema_id, id(dec.schema))
        variant = self._variants.get(key)
        if variant is None:  # one new schema per writer schema, registered once
            if name not in mutate.fields(dec.schema.raw):
                raise FieldError("unknown_field", f"field {name!r} is not in the writer schema")
            new_raw = self._new_schema(dec.schema.raw, name)
            framed = dec.schema_id is not None
            variant = self._variants[key] = self.register_variant(
                new_raw, framed, self.config.subject
            )
        schema, new_id = variant
        value, detail = self._new_value(dict(dec.value), name)
        encoded = codec.encode(value, schema, new_id if dec.schema_id is not None else None)
        return encoded, {
            "field": name,
            "old_schema_id": dec.schema_id,
            "schema_id": new_id,
            **detail,
        }

    def _new_schema(self, raw: Any, name: str) -> Any:
        mode = self.config.mode
        if mode == "drop_field":
            return mutate.drop_field(raw, name)
        if mode == "rename_field":
            return mutate.rename_field(raw, name, self.config.to or f"{name}_renamed")
        if mode == "change_type":
            return mutate.retype_field(raw, name, self.config.to or "string")
        if mode == "make_nullable":
            return mutate.make_nullable(raw, name)
        try:
            return mutate.add_enum_symbol(raw, name, ENUM_SYMBOL)
        except TypeError as exc:
            raise FieldError("wrong_type", str(exc)) from exc

    def _new_value(self, value: dict[str, Any], name: str) -> tuple[Any, dict[str, Any]]:
        mode, old = self.config.mode, value.get(name)
        if mode == "drop_field":
            value.pop(name, None)
            return value, {"old": old}
        if mode == "rename_field":
            to = self.config.to or f"{name}_renamed"
            value[to] = value.pop(name)
            return value, {"to": to}
        if mode == "change_type":
            value[name] = _cast(old, self.config.to or "string")
            return value, {"old": old, "new": value[name]}
        value[name] = None if mode == "make_nullable" else ENUM_SYMBOL
        return value, {"old": old, "new": value[name]}

    def _old_version(self, dec: Any) -> tuple[bytes, dict[str, Any]]:
        registry = self.ctx.codec.registry
        if registry is None or dec.schema_id is None:
            raise FieldError("no_registry", "old_version needs a schema registry")
        older = [
            (v, i) for v, i in registry.versions(f"{self.ctx.source}-value") if i != dec.schema_id
        ]
        older = [(v, i) for v, i in older if i < dec.schema_id] or older
        if not older:
            raise FieldError("no_older_version", f"{self.ctx.source}-value has one version")
        version, old_id = older[-1]
        schema = registry.schema(old_id)
        value = {
            f["name"]: dec.value.get(f["name"], f.get("default"))
            for f in schema.raw.get("fields", [])
        }
        encoded = self.ctx.codec.encode(value, schema, old_id)
        return encoded, {"old_schema_id": dec.schema_id, "schema_id": old_id, "version": version}


def _cast(value: Any, to: str) -> Any:
    if value is None:
        return None
    if to == "string":
        return mutate.as_string(value)
    try:
        return CASTS.get(to, str)(value)
    except (TypeError, ValueError) as exc:
        raise FieldError("wrong_type", f"cannot cast {value!r} to {to}") from exc
