"""``corrupt``: bad feature values inside otherwise valid records.

Per field: ``null``, ``nan``, ``inf``, ``type_flip`` (true → "true", 1 → "1"),
``unseen_category``, ``empty_string``, ``drop_feature``, ``stuck`` (frozen at the first
value seen in the episode), ``unit_scale`` (×factor), ``spike`` (±k·σ, σ from the values
seen), ``timestamp_skew`` (a timestamp field, or the record time without ``fields``,
shifted by ``hours``). Modes the writer schema cannot carry (null in a non-nullable
field, a string in a number, an unknown enum symbol, a missing field) are written under a
newly registered schema, like ``schema_break``'s contract breaks.

>>> import random
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.faults.base import FaultContext
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Corrupt(CorruptConfig(mode="nan", fields=["amount"]), random.Random(1))
>>> fault.ctx = FaultContext(JsonCodec(), "t", "t.shadow")
>>> record = Record("t", 0, 1, None, b'{"amount": 3.5}')
>>> [action] = fault.act(picks_of([record], codec=JsonCodec()), now=0)
>>> action.value, action.injection.detail
(b'{"amount":NaN}', {'mode': 'nan', 'fields': {'amount': {'old': 3.5, 'new': 'nan'}}})
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from streamchaos.codec import mutate
from streamchaos.codec.avro import AvroCodec
from streamchaos.codec.patch import Layouts
from streamchaos.errors import FieldError
from streamchaos.faults.actions import Action
from streamchaos.faults.base import FaultConfig, InPlaceFault, Revalued, RunningStats
from streamchaos.faults.picks import Picks

MODES = (
    "null",
    "nan",
    "inf",
    "type_flip",
    "unseen_category",
    "empty_string",
    "drop_feature",
    "stuck",
    "unit_scale",
    "spike",
    "timestamp_skew",
)
FLOATS = {"float", "double"}
NUMBERS = mutate.NUMERIC
SUITS: dict[str, set[str] | None] = {
    "nan": FLOATS,
    "inf": FLOATS,
    "unit_scale": NUMBERS,
    "spike": NUMBERS,
    "empty_string": {"string"},
    "unseen_category": {"string", "enum"},
    "type_flip": NUMBERS | {"boolean"},
    "timestamp_skew": {"long", "timestamp-millis", "timestamp-micros"},
}
UNSEEN = "__streamchaos_unseen__"
UNSEEN_SYMBOL = UNSEEN.upper().strip("_")  # the symbol added to an enum field
PATCHABLE = {"nan", "inf", "unit_scale", "spike"}


class CorruptConfig(FaultConfig):
    type: Literal["corrupt"] = "corrupt"
    example: ClassVar[dict[str, Any]] = {"mode": "spike", "fields": ["amount"], "k": 5}
    mode: Literal[MODES] = "nan"  # type: ignore[valid-type]
    fields: list[str] = Field(default_factory=list, description="fields to corrupt")
    factor: float = Field(default=100.0, description="unit_scale: multiplier")
    k: float = Field(default=8.0, gt=0, description="spike: size in standard deviations")
    hours: float = Field(default=3.0, description="timestamp_skew: shift")
    negative: bool = Field(default=False, description="inf: -inf instead of +inf")
    subject: str | None = Field(default=None, description="subject for new schemas")

    @model_validator(mode="after")
    def _fields(self) -> CorruptConfig:
        if not self.fields and self.mode != "timestamp_skew":
            raise ValueError(f"mode {self.mode} needs fields")
        return self


class Corrupt(InPlaceFault):
    Config = CorruptConfig
    purpose = (
        "bad values per field: NaN/inf/null, type flips, unseen categories, stuck values, "
        "unit changes, spikes, timestamp skew"
    )
    config: CorruptConfig

    def reset(self) -> None:
        self._variants: dict[tuple[int | None, int], tuple[Any, int | None]] = {}
        self._layouts = Layouts(self.config.fields, self._check_schema)
        self._enums: dict[int, set[str]] = {}  # id(writer schema) -> its enum fields
        self._stuck: dict[str, Any] = {}
        self._stats: dict[str, RunningStats] = {}
        self.value_only = bool(self.config.fields)  # all but a skew of the record time

    def episode_started(self) -> None:
        self._stuck.clear()  # each episode freezes the first value it sees

    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        cfg = self.config
        if not cfg.fields:  # timestamp_skew of the record time
            record, shift = picks.items[i].record, int(cfg.hours * 3_600_000)
            return self.modify(
                record.evolve(timestamp=record.timestamp + shift),
                {
                    "mode": cfg.mode,
                    "field": None,
                    "old": record.timestamp,
                    "new": record.timestamp + shift,
                },
            )
        value, note = self._change_value(picks, i)
        return self.new_value(value, note, self.describe)

    def revalue(self, picks: Picks, now: float) -> list[Revalued]:
        out: list[Revalued] = []
        seeds = picks.seeds if self.config.mode == "spike" else None  # the spike's sign
        for i in range(len(picks)):
            if seeds is not None:
                self.rng.seed(seeds[i])
            try:
                out.append(self._change_value(picks, i))
            except Exception as exc:  # bad input never stops the bridge (DESIGN invariant 5)
                self.report(picks.where(i), exc)
                out.append(None)
        return out

    def _change_value(self, picks: Picks, i: int) -> tuple[bytes, Any]:
        """The new value of record ``i`` and a note for ``describe``."""
        codec, data = self.ctx.codec, picks.items[i].value
        if self.config.mode in PATCHABLE and isinstance(codec, AvroCodec):
            patched = self._patch(codec, data)
            if patched is not None:
                return patched
        dec = picks.decode(i)
        if not isinstance(dec.value, dict):
            raise FieldError("not_a_record", "the value is not a record")
        schema, schema_id = self._variant(dec)
        value = dict(dec.value)
        changes = {name: self._corrupt(value, name, dec) for name in self.config.fields}
        encoded = codec.encode(value, schema, schema_id)
        detail: dict[str, Any] = {"mode": self.config.mode, "fields": changes}
        if schema_id != dec.schema_id:
            detail.update(old_schema_id=dec.schema_id, schema_id=schema_id)
        return encoded, detail

    def _patch(self, codec: AvroCodec, data: bytes | None) -> tuple[bytes, Any] | None:
        """Numeric fields rewritten in the Avro bytes (no decode, no encode), or None when
        the writer schema's layout needs the full decode."""
        located, start = self._layouts.find(codec, data)
        if located is None:
            return None
        assert data is not None  # locate refuses tombstones
        found = located.read_record(data, start)
        olds = [old for _, _, old in found]
        news = [self._new(name, old, None) for name, old in zip(located.names, olds, strict=True)]
        return located.rewrite(data, found, news), (olds, news)

    def describe(self, note: Any) -> dict[str, Any]:
        """The detail of a change: (old values, new values) of a patch, else the detail."""
        if isinstance(note, dict):
            return note
        olds, news = note
        changes = {
            name: {"old": _plain(old), "new": _plain(new)}
            for name, old, new in zip(self.config.fields, olds, news, strict=True)
        }
        return {"mode": self.config.mode, "fields": changes}

    def _variant(self, dec: Any) -> tuple[Any, int | None]:
        """The schema to write with (validated, mutated and registered once per writer)."""
        if dec.schema is None:
            return None, None
        key = (dec.schema_id, id(dec.schema))
        if key not in self._variants:
            fields = self._check_schema(dec.schema)
            self._enums[id(dec.schema)] = {
                name for name, f in fields.items() if mutate.type_name(f["type"]) == "enum"
            }
            new = self._mutated(dec.schema.raw)
            if new is dec.schema.raw:
                self._variants[key] = (dec.schema, dec.schema_id)
            else:
                framed = dec.schema_id is not None
                self._variants[key] = self.register_variant(new, framed, self.config.subject)
        return self._variants[key]

    def _check_schema(self, schema: Any) -> dict[str, Any]:
        """The writer schema's fields, once each configured field is found fit."""
        fields = mutate.fields(schema.raw)
        for name in self.config.fields:
            self._check(fields, name)
        return fields

    def _check(self, fields: dict[str, Any], name: str) -> None:
        if name not in fields:
            raise FieldError("unknown_field", f"field {name!r} is not in the writer schema")
        suits = SUITS.get(self.config.mode)
        kind = mutate.type_name(fields[name]["type"])
        if suits is not None and kind not in suits:
            raise FieldError(
                "wrong_type",
                f"mode {self.config.mode} does not apply to field {name!r} of type {kind}",
            )

    def _mutated(self, raw: Any) -> Any:
        mode, new = self.config.mode, raw
        for name in self.config.fields:
            ftype = mutate.fields(new)[name]["type"]
            if mode == "null" and not mutate.nullable(ftype):
                new = mutate.make_nullable(new, name)
            elif mode == "type_flip":
                new = mutate.retype_field(new, name, "string")
            elif mode == "drop_feature":
                new = mutate.drop_field(new, name)
            elif mode == "unseen_category" and mutate.type_name(ftype) == "enum":
                new = mutate.add_enum_symbol(new, name, UNSEEN_SYMBOL)
        return new

    def _corrupt(self, value: dict[str, Any], name: str, dec: Any) -> dict[str, Any]:
        if name not in value:
            raise FieldError("unknown_field", f"field {name!r} is not in the record")
        old = value[name]
        new = self._new(name, old, dec)  # one its field cannot hold: refused by the encode
        if self.config.mode == "drop_feature":
            value.pop(name)
        else:
            value[name] = new
        return {"old": _plain(old), "new": _plain(new)}

    def _new(self, name: str, old: Any, dec: Any) -> Any:
        mode, cfg = self.config.mode, self.config
        if mode == "null" or mode == "drop_feature":
            return None
        if mode == "nan":
            return math.nan
        if mode == "inf":
            return -math.inf if cfg.negative else math.inf
        if mode == "type_flip":
            return mutate.as_string(old)
        if mode == "unseen_category":  # _variant has seen the schema
            enum = dec.schema is not None and name in self._enums[id(dec.schema)]
            return UNSEEN_SYMBOL if enum else UNSEEN
        if mode == "empty_string":
            return ""
        if mode == "stuck":
            return self._stuck.setdefault(name, old)
        if old is None:
            return None
        if mode == "unit_scale":
            return type(old)(old * cfg.factor)
        if mode == "spike":
            return type(old)(old + self.rng.choice((-1, 1)) * cfg.k * self._sigma(name, old))
        return _skew(old, cfg.hours)

    def _sigma(self, name: str, x: float) -> float:
        """Standard deviation of the field's values seen so far (this one included)."""
        stats = self._stats.setdefault(name, RunningStats())
        stats.add(x)
        return stats.sigma or abs(x) or 1.0


def _skew(old: Any, hours: float) -> Any:
    if isinstance(old, dt.datetime):
        return old + dt.timedelta(hours=hours)
    return old + int(hours * 3_600_000)


def _plain(v: Any) -> Any:
    """JSON-friendly ledger values (NaN/inf as strings, datetimes as ISO)."""
    if type(v) is int or (type(v) is float and -math.inf < v < math.inf):
        return v  # the common case, without the checks below
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return v
