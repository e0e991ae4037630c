"""``label``: faults in training streams, where the label itself is wrong or missing.

``flip`` (to another of ``classes`` at random, a boolean negated, or by a class-conditional
``matrix: {old: {new: p}}``), ``shuffle`` (labels permuted within windows of ``window``
selected records: each window gets a permutation of the previous window's labels),
``remove_class`` (records of ``class_`` dropped, ledgered), ``exclude_segment`` (records
matching ``where`` dropped: feedback skew).

>>> import random
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.faults.base import FaultContext
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Label(LabelConfig(mode="flip"), random.Random(1))
>>> fault.ctx = FaultContext(JsonCodec(), "t", "t.shadow")
>>> record = Record("t", 0, 1, None, b'{"label": true}')
>>> [action] = fault.act(picks_of([record], codec=JsonCodec()), now=0)
>>> action.value, action.injection.detail
(b'{"label":false}', {'mode': 'flip', 'field': 'label', 'old': True, 'new': False})
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from streamchaos.codec import mutate
from streamchaos.errors import FieldError
from streamchaos.faults.actions import KEEP, Action, Drop
from streamchaos.faults.base import FaultConfig, ValueFault
from streamchaos.faults.picks import Picks
from streamchaos.predicates import shown


class LabelConfig(FaultConfig):
    type: Literal["label"] = "label"
    example: ClassVar[dict[str, Any]] = {"mode": "flip", "field": "label"}
    mode: Literal["flip", "shuffle", "remove_class", "exclude_segment"] = "flip"
    field: str = Field(default="label", description="the label field")
    classes: list[Any] | None = Field(default=None, description="flip: the label values")
    matrix: dict[str, dict[str, float]] | None = Field(
        default=None, description="flip: P(new | old), e.g. {fraud: {legit: 0.3}}"
    )
    window: int = Field(default=50, ge=2, description="shuffle: labels permuted together")
    class_: Any = Field(default=None, alias="class", description="remove_class: the class")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _needs(self) -> LabelConfig:
        if self.mode == "remove_class" and self.class_ is None:
            raise ValueError("remove_class needs class")
        if self.mode == "exclude_segment" and not self.where:
            raise ValueError("exclude_segment needs where")
        if self.matrix and any(sum(row.values()) > 1 + 1e-9 for row in self.matrix.values()):
            raise ValueError("each matrix row's probabilities must sum to at most 1")
        return self


class Label(ValueFault):
    Config = LabelConfig
    purpose = (
        "training-stream faults: label flips (random, boolean, class-conditional `matrix`), "
        "shuffled labels, a class removed, a segment excluded"
    )
    config: LabelConfig

    def reset(self) -> None:
        self._window: list[Any] = []
        self._pool: list[Any] = []

    def episode_started(self) -> None:
        self.reset()  # a shuffle window belongs to one episode

    def _drop(self, picks: Picks, i: int) -> Action:
        """Drop (ledgered) a record of the removed class or the excluded segment."""
        value = self._decoded(picks, i)[1]
        cfg = self.config
        if cfg.mode == "remove_class" and _same(value.get(cfg.field), cfg.class_):
            return Drop(self.injection("drop", {"mode": cfg.mode, "label": value.get(cfg.field)}))
        if cfg.mode == "exclude_segment":  # the stage passes on only the ``where`` segment
            segment = shown(cfg.where or {})
            return Drop(self.injection("drop", {"mode": cfg.mode, "segment": segment}))
        return KEEP

    def _decoded(self, picks: Picks, i: int) -> tuple[Any, dict[str, Any]]:
        dec = picks.decode(i)
        if not isinstance(dec.value, dict) or self.config.field not in dec.value:
            raise FieldError("unknown_field", f"label field {self.config.field!r} not found")
        return dec, dec.value

    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        if self.config.mode in ("remove_class", "exclude_segment"):
            return self._drop(picks, i)
        dec, value = self._decoded(picks, i)
        value = dict(value)
        old = value[self.config.field]
        new = self._flip(old) if self.config.mode == "flip" else self._shuffle(old)
        if new is _KEEP or _same(new, old):
            return None
        value[self.config.field] = new
        encoded = self.ctx.codec.encode(value, dec.schema, dec.schema_id)
        detail = {"mode": self.config.mode, "field": self.config.field, "old": old, "new": new}
        return self.new_value(encoded, detail)

    def _flip(self, old: Any) -> Any:
        cfg, rng = self.config, self.rng
        if cfg.matrix is not None:
            row = cfg.matrix.get(mutate.as_string(old), {})
            u, acc = rng.random(), 0.0
            for target, p in row.items():
                acc += p
                if u < acc:
                    return _like(old, target)
            return _KEEP
        if cfg.classes:
            others = [c for c in cfg.classes if not _same(c, old)]
            return rng.choice(others) if others else _KEEP
        if isinstance(old, bool):
            return not old
        raise FieldError("no_classes", "flip of a non-boolean label needs classes or matrix")

    def _shuffle(self, old: Any) -> Any:
        """Window k's records get a permutation of window k-1's labels."""
        new = self._pool.pop() if self._pool else _KEEP
        self._window.append(old)
        if len(self._window) >= self.config.window:
            self._pool = list(self._window)
            self.rng.shuffle(self._pool)
            self._window = []
        return new


_KEEP = object()


def _same(a: Any, b: Any) -> bool:
    return (a == b and type(a) is type(b)) or str(a).lower() == str(b).lower()


def _like(old: Any, target: str) -> Any:
    """The matrix's target (a YAML string) in the label's own type."""
    if isinstance(old, bool):
        return target.lower() == "true"
    if isinstance(old, int):
        return int(target)
    return target
