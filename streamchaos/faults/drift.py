"""``drift``: gradual distribution drift per feature — what ML monitoring exists to catch.

Numeric: ``shift`` (absolute, or in σ units with ``unit: sigma``, σ from a warm-up of the
live feature), ``scale`` (variance change about the mean), ``noise`` (added Gaussian).
Categorical: ``remap`` (a → b with probability ``p``), ``new_category`` (an unseen value at
``rate``), ``mix`` (target frequencies). Any field: ``null_rate``.
Intensity follows the schedule; ``ramp_by: magnitude`` (default) scales every selected
record's change by it, ``ramp_by: fraction`` gives more records the full change.
``where: {field: value}`` limits the drift to a segment.

>>> cfg = DriftConfig(features={"amount": {"shift": 5}})
>>> cfg.features["amount"].shift
5.0
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamchaos.codec import mutate
from streamchaos.faults.base import FaultConfig, FieldError, RunningStats, ValueFault
from streamchaos.record import Record


class FeatureDrift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shift: float | None = Field(default=None, description="mean shift (absolute or in σ)")
    unit: Literal["absolute", "sigma"] = "absolute"
    scale: float | None = Field(default=None, gt=0, description="spread × this about the mean")
    noise: float | None = Field(default=None, ge=0, description="σ of added Gaussian noise")
    remap: dict[str, str] | None = Field(default=None, description="category a → b")
    p: float = Field(default=1.0, ge=0, le=1, description="remap probability")
    new_category: str | None = Field(default=None, description="an unseen category")
    rate: float = Field(default=0.1, ge=0, le=1, description="new_category rate")
    mix: dict[str, float] | None = Field(default=None, description="target frequencies")
    null_rate: float | None = Field(default=None, ge=0, le=1, description="share set to null")

    @model_validator(mode="after")
    def _one_op(self) -> FeatureDrift:
        ops = (
            self.shift,
            self.scale,
            self.noise,
            self.remap,
            self.new_category,
            self.mix,
            self.null_rate,
        )
        if all(op is None for op in ops):
            raise ValueError(
                "give at least one of shift, scale, noise, remap, new_category, mix, null_rate"
            )
        if self.mix is not None and not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-6):
            raise ValueError("mix frequencies must sum to 1")
        return self

    @property
    def numeric(self) -> bool:
        return any(op is not None for op in (self.shift, self.scale, self.noise))


class DriftConfig(FaultConfig):
    type: Literal["drift"] = "drift"
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records selected")
    features: dict[str, FeatureDrift] = Field(min_length=1)
    ramp_by: Literal["magnitude", "fraction"] = "magnitude"
    where: dict[str, Any] | None = Field(default=None, description="only this segment")
    warmup: int = Field(default=200, ge=2, description="records that estimate mean and σ")


class Drift(ValueFault):
    Config = DriftConfig
    purpose = (
        "gradual distribution drift per feature: shift, scale, noise, category mix, "
        "new category, null-rate creep"
    )
    config: DriftConfig

    def reset(self) -> None:
        self._stats: dict[str, RunningStats] = {}
        self._checked: set[int] = set()

    def change(self, record: Record, now: float) -> tuple[Record, dict[str, Any]] | None:
        codec = self.ctx.codec
        dec = codec.decode(record.value)
        if not isinstance(dec.value, dict):
            raise FieldError("not_a_record", "the value is not a record")
        self._check(dec)
        value = dict(dec.value)
        for name in self.config.features:
            if name not in value:
                raise FieldError("unknown_field", f"field {name!r} is not in the record")
        where = self.config.where
        if where and any(value.get(k) != v for k, v in where.items()):
            return None
        intensity = self.config.schedule.intensity(now)
        if self.config.ramp_by == "fraction":
            intensity = 1.0 if intensity > 0 else 0.0
        changes = {}
        for name, spec in self.config.features.items():
            old = value.get(name)
            new = self._drift(name, spec, old, intensity)
            if new is not _WARMING and new != old:
                value[name] = new
                changes[name] = {"old": old, "new": new}
        if not changes:
            return None
        schema, schema_id = self._schema(dec)
        encoded = codec.encode(value, schema, schema_id)
        return record.evolve(value=encoded), {"intensity": round(intensity, 6), "features": changes}

    def _check(self, dec: Any) -> None:
        if dec.schema is None or id(dec.schema) in self._checked:
            return
        fields = mutate.fields(dec.schema.raw)
        for name, spec in self.config.features.items():
            if name not in fields:
                raise FieldError("unknown_field", f"field {name!r} is not in the writer schema")
            kind = mutate.type_name(fields[name]["type"])
            if spec.numeric and kind not in mutate.NUMERIC:
                raise FieldError("wrong_type", f"numeric drift on {name!r} of type {kind}")
            if spec.null_rate and not mutate.nullable(fields[name]["type"]):
                raise FieldError("wrong_type", f"null_rate on non-nullable field {name!r}")
        self._checked.add(id(dec.schema))

    def _schema(self, dec: Any) -> tuple[Any, int | None]:
        return dec.schema, dec.schema_id

    def _drift(self, name: str, spec: FeatureDrift, old: Any, i: float) -> Any:
        rng = self.rng
        if spec.null_rate is not None and rng.random() < spec.null_rate * i:
            return None
        if old is None:
            return old
        if spec.numeric:
            return self._numeric(name, spec, old, i)
        if spec.remap is not None and old in spec.remap and rng.random() < spec.p * i:
            return spec.remap[old]
        if spec.new_category is not None and rng.random() < spec.rate * i:
            return spec.new_category
        if spec.mix is not None and rng.random() < i:
            return rng.choices(list(spec.mix), weights=list(spec.mix.values()))[0]
        return old

    def _numeric(self, name: str, spec: FeatureDrift, old: float, i: float) -> Any:
        n, mean, sigma = self._observe(name, float(old))
        if n < self.config.warmup and (spec.unit == "sigma" or spec.scale is not None):
            return _WARMING
        unit = sigma if spec.unit == "sigma" else 1.0
        new = float(old)
        if spec.scale is not None:
            new = mean + (new - mean) * (1 + (spec.scale - 1) * i)
        if spec.shift is not None:
            new += spec.shift * unit * i
        if spec.noise is not None:
            new += self.rng.gauss(0.0, spec.noise * unit * i)
        return round(new) if isinstance(old, int) else new

    def _observe(self, name: str, x: float) -> tuple[int, float, float]:
        """Mean and σ over the first ``warmup`` values, then frozen (the reference)."""
        stats = self._stats.setdefault(name, RunningStats(self.config.warmup))
        stats.add(x)
        return stats.n, stats.mean, stats.sigma


_WARMING = object()
