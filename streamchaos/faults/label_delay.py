"""``label_delay``: late labels — outcomes arrive days or weeks after the prediction
(chargebacks, churn), and how late depends on the outcome: a fraud label after 30–90 days,
a clean one after a week.

Each picked record's ``label_field`` is read and its class (the value as text: ``true``,
``false``, ``1``, ``fraud``) picks a delay from ``classes`` (or ``default``; a class with
neither passes at once). The delay is drawn per record (seeded) from the class's
distribution and multiplied by ``time_scale``, so an experiment can compress days into
seconds (``time_scale: 1.0e-5``: 30 days → 26 s). Records wait in memory, at most
``max_held`` of them (beyond it the earliest-due go early, marked ``released_early``):
delays that would hold more than that, at the topic's rate, need the scale. The ledger
line gives the class, the drawn delay and the scaled one. In YAML, quote class names
when a mapping has both ``true`` and ``1`` (or ``false`` and ``0``): unquoted, YAML reads
them as one key.

>>> import random
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.faults.base import FaultContext
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> cfg = LabelDelayConfig(label_field="fraud", classes={"true": {"delay": "30d"}},
...                        time_scale=1e-5)
>>> fault = LabelDelay(cfg, random.Random(1))
>>> fault.ctx = FaultContext(JsonCodec(), "labels", "labels.shadow")
>>> values = [b'{"fraud": true}', b'{"fraud": false}']
>>> rows = [Record("labels", 0, i, b"k", v) for i, v in enumerate(values)]
>>> fault.act(picks_of(rows, codec=JsonCodec()), now=0.0)
[HOLD, KEEP]
>>> [(r.item.record.offset, r.injection.detail) for r in fault.due(26.0)]
[(0, {'class': 'true', 'delay_s': 2592000.0, 'scaled_delay_ms': 25920.0})]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streamchaos.errors import FieldError
from streamchaos.faults.actions import KEEP, Action, Release
from streamchaos.faults.base import BufferedFault, DecodingFault
from streamchaos.faults.hold import LongHoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.predicates import MISSING, field_of
from streamchaos.units import Duration


class ClassDelay(BaseModel):
    """How late one class's labels come."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    delay: Duration = Field(default=0.0, ge=0, description="fixed delay, or the exponential mean")
    min: Duration = Field(default=0.0, ge=0, description="uniform: lower bound")
    max: Duration = Field(default=0.0, ge=0, description="uniform: upper bound")
    cap: Duration | None = Field(default=None, gt=0, description="no delay exceeds this")

    @model_validator(mode="after")
    def _bounds(self) -> ClassDelay:
        if self.distribution == "uniform":
            if self.min > self.max:
                raise ValueError("min must be <= max")
            if self.max <= 0 or self.delay:
                raise ValueError("uniform: give min and max (max > 0), not delay")
        elif self.delay <= 0 or self.min or self.max:
            raise ValueError(f"{self.distribution}: give delay (> 0), not min or max")
        return self

    def longest(self) -> float | None:
        if self.distribution == "uniform":
            bound: float | None = self.max
        else:
            bound = self.delay if self.distribution == "fixed" else None
        return bound if self.cap is None else min(bound or self.cap, self.cap)

    def shortest(self) -> float:
        low = {"uniform": self.min, "fixed": self.delay}.get(self.distribution, 0.0)
        return low if self.cap is None else min(low, self.cap)

    def draw(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            drawn = rng.uniform(self.min, self.max)
        elif self.distribution == "exponential":
            drawn = rng.expovariate(1.0 / self.delay) if self.delay > 0 else 0.0
        else:
            drawn = self.delay
        return drawn if self.cap is None else min(drawn, self.cap)


class LabelDelayConfig(LongHoldingConfig):
    type: Literal["label_delay"] = "label_delay"
    example: ClassVar[dict[str, Any]] = {
        "label_field": "label",
        "classes": {"true": {"distribution": "uniform", "min": "30d", "max": "90d"}},
        "time_scale": 1e-7,
    }
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of labels delayed")
    label_field: str = Field(min_length=1, description="the field whose value is the class")
    classes: dict[str, ClassDelay] = Field(description="the delay of each class (its text)")
    default: ClassDelay | None = Field(default=None, description="the delay of other classes")
    time_scale: float = Field(default=1.0, gt=0, le=1, description="delays are multiplied by it")

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, classes: Any) -> Any:
        """YAML reads ``true:`` and ``1:`` as a boolean and a number: name them as text."""
        if isinstance(classes, dict):
            return {k if isinstance(k, str) else _class_of(k): v for k, v in classes.items()}
        return classes

    def longest(self) -> float | None:
        specs = [*self.classes.values(), *([self.default] if self.default else [])]
        bounds = [spec.longest() for spec in specs]
        if None in bounds:
            return None
        return max(b for b in bounds if b is not None) * self.time_scale

    def shortest(self) -> float:
        specs = [*self.classes.values(), *([self.default] if self.default else [])]
        return min(spec.shortest() for spec in specs) * self.time_scale

    @model_validator(mode="after")
    def _some_class(self) -> LabelDelayConfig:
        if not self.classes and self.default is None:
            raise ValueError("classes: give at least one class (or a default)")
        return self


class LabelDelay(BufferedFault, DecodingFault):
    Config = LabelDelayConfig
    purpose = "late labels: held by a delay drawn per class (30-90 days for fraud), time-scaled"
    config: LabelDelayConfig

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        for i, item in enumerate(picks.items):
            try:
                cls, delay = self._delay_of(picks, i)
            except Exception as exc:  # bad input never stops the bridge: it passes, counted
                self.report(picks.where(i), exc)
                out.append(KEEP)
                continue
            if delay is None:
                out.append(KEEP)
                continue
            scaled = delay * self.config.time_scale
            note = {"class": cls, "delay_s": delay, "scaled_delay_ms": round(scaled * 1000, 3)}
            out.append(self._hold_for(now, scaled, Release(item, self.injection("modify", note))))
        return out

    def _delay_of(self, picks: Picks, i: int) -> tuple[str, float | None]:
        """The record's class and its drawn delay in seconds (None: not delayed)."""
        value = field_of(picks.decode(i).value, self.config.label_field)
        if value is MISSING:
            raise FieldError(
                "unknown_field", f"field {self.config.label_field!r} is not in the record"
            )
        cls = _class_of(value)
        spec = self.config.classes.get(cls, self.config.default)
        if spec is None:
            return cls, None
        self.rng.seed(picks.seeds[i])
        return cls, spec.draw(self.rng)


def _class_of(value: Any) -> str:
    """A label's class as the config names it: true/false, a number as written, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
