"""``leak``: target leakage — a feature that secretly carries the label (a post-outcome
field joined by mistake), so offline metrics look great and a leakage detector should
fire.

The ``feature`` of each picked record becomes its label (``label_field``; a boolean as
0/1) plus Gaussian noise whose σ is set from the spread of the labels seen so far, so
that the feature's correlation with the label, over the records changed, is
``correlation`` (1: the label itself). The first records of a partition get the spread of
the few labels seen so far (the very first: the label itself); ``warmup: n`` passes the
first n unchanged instead, which lowers the correlation on the shadow more than their
number suggests (their feature keeps its own, wider spread). ``lag: k`` leaks instead
the label of the k-th earlier record this fault picked on the partition (with
``fraction`` < 1, about k/fraction records back): a stale outcome, whose correlation
with the record's own label is as strong as the labels' autocorrelation, not
``correlation``. The state is per partition and starts over when the partition moves to
another bridge.

``label_from: {route, field}`` takes the label from another route of the experiment
instead (a labels topic), by key: the latest record with the record's key there, as far as
the bridge has consumed it (the join of ``feedback``: ``window``, ``max_keys``). A record
whose key has no label there passes unchanged and counts in
``streamchaos_join_misses_total``; the ledger line names the label's coordinates.

>>> import json, random
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.faults.base import FaultContext
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Leak(LeakConfig(feature="score", label_field="fraud"), random.Random(1))
>>> fault.ctx = FaultContext(JsonCodec(), "t", "t.shadow")
>>> rec = Record("t", 0, 0, None, b'{"score": 0.2, "fraud": true}')
>>> [change] = fault.act(picks_of([rec], codec=JsonCodec()), 0.0)
>>> json.loads(change.value), change.injection.detail
({'score': 1.0, 'fraud': True}, {'feature': 'score', 'old': 0.2, 'new': 1.0})
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from streamchaos.codec import mutate
from streamchaos.errors import FieldError
from streamchaos.faults.actions import Action
from streamchaos.faults.base import FaultConfig, RunningStats, ValueFault
from streamchaos.faults.picks import Picks
from streamchaos.joins import FieldReader, Joined, JoinSettings, JoinSpec
from streamchaos.predicates import MISSING
from streamchaos.record import Record


class LabelFrom(JoinSettings):
    field: str = Field(min_length=1, description="the label's field there")


class LeakConfig(FaultConfig):
    type: Literal["leak"] = "leak"
    example: ClassVar[dict[str, Any]] = {"feature": "amount", "label_field": "label"}
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records leaked")
    feature: str = Field(min_length=1, description="the field that gets the label")
    label_field: str | None = Field(
        default=None, min_length=1, description="the label's field (boolean or number)"
    )
    label_from: LabelFrom | None = Field(
        default=None, description="the label from another route, by key, instead"
    )
    correlation: float = Field(
        default=1.0, gt=0, le=1, description="the leaked feature's correlation with the label"
    )
    lag: int = Field(default=0, ge=0, le=100_000, description="leak the k-th earlier label")
    warmup: int = Field(
        default=0, ge=0, description="labels seen (per partition) before the first leak"
    )

    @model_validator(mode="after")
    def _two_fields(self) -> LeakConfig:
        if (self.label_field is None) == (self.label_from is None):
            raise ValueError("give one of label_field (this record's) or label_from")
        if self.feature == self.label_field:
            raise ValueError("feature: must not be the label field itself")
        return self

    @property
    def joined(self) -> JoinSpec | None:
        if self.label_from is None:
            return None
        return JoinSpec(self.label_from, FieldReader(self.label_from.field), "label_from.route")


class Leak(ValueFault):
    Config = LeakConfig
    purpose = (
        "target leakage: a feature set to the label, or to the label plus noise for a "
        "chosen correlation, optionally lagged"
    )
    config: LeakConfig

    def reset(self) -> None:
        self._labels = RunningStats()
        self._earlier: deque[float] = deque(maxlen=self.config.lag + 1)

    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        cfg = self.config
        dec = picks.decode(i)
        value = dec.value
        here = value if isinstance(value, dict) else {}
        if cfg.feature not in here:
            raise FieldError("unknown_field", f"field {cfg.feature!r} is not in the record")
        note: dict[str, Any] = {"feature": cfg.feature}
        if cfg.label_from is None:
            if cfg.label_field not in here:
                raise FieldError("unknown_field", f"field {cfg.label_field!r} is not in the record")
            label = _number(here[cfg.label_field])
        else:
            joined = self._joined(picks.items[i].record)
            if joined is None:
                return None
            label, note["joined"] = _number(joined.value), joined.coordinates()
        self._labels.add(label)
        self._earlier.append(label)
        if len(self._earlier) <= cfg.lag or self._labels.n <= cfg.warmup:
            return None  # the labels' spread (and the k earlier labels) not known yet
        leaked = self._earlier[0] + self._noise()
        old = here[cfg.feature]
        new = _like(old, leaked, dec.schema, cfg.feature)
        if new == old and type(new) is type(old):
            return None
        out = dict(here)
        out[cfg.feature] = new
        encoded = self.ctx.codec.encode(out, dec.schema, dec.schema_id)
        return self.new_value(encoded, note | {"old": old, "new": new})

    def _joined(self, record: Record) -> Joined | None:
        """The label record of ``record``'s key on ``label_from``'s route (None: a miss,
        counted)."""
        joined = self.ctx.joined(self.config).get(record.key, record.timestamp)
        if joined is None or joined.value is MISSING:
            self.ctx.join_missed(self.config.label)
            return None
        return joined

    def _noise(self) -> float:
        """N(0, σ²) with σ = sd(label)·√(1/r² − 1): label + noise then correlates r with
        the label."""
        r = self.config.correlation
        if r >= 1.0:
            return 0.0
        sigma = self._labels.sigma * math.sqrt(1.0 / (r * r) - 1.0)
        return self.rng.gauss(0.0, sigma) if sigma > 0 else 0.0


def _number(label: Any) -> float:
    if isinstance(label, bool):
        return 1.0 if label else 0.0
    if isinstance(label, int | float) and math.isfinite(label):
        return float(label)
    raise FieldError("wrong_type", f"the label must be a boolean or a number, not {label!r}")


def _like(old: Any, leaked: float, schema: Any, feature: str) -> float | int:
    """The leaked number in the feature's type: an Avro int or long gets it rounded; a
    JSON feature that holds a number (or null) gets it as it is."""
    if schema is None:
        if old is None or (isinstance(old, int | float) and not isinstance(old, bool)):
            return leaked
        raise FieldError("wrong_type", f"feature {feature!r} holds {old!r}, not a number")
    kind = mutate.type_name(mutate.fields(schema.raw).get(feature, {}).get("type"))
    if kind in ("int", "long"):
        return round(leaked)
    if kind in ("double", "float"):
        return leaked
    raise FieldError("wrong_type", f"feature {feature!r} is {kind}, not a number")
