"""``feedback``: labels shaped by the model's own decisions — a fraud model sees the labels
of the transactions it approved only, because the declined ones never get an outcome.

Each picked record (a label) is joined by key with the latest record of another route of
the experiment (``join.route``, e.g. the predictions), as far as the bridge has consumed
it: when that record matches ``when:`` (the same tests as ``where:``, on the joined
record), the label is dropped (``action: drop``, censoring) or its ``label_field`` is set
to ``value`` (``action: relabel``), or held for ``delay`` (``action: delay``: a declined
transaction's outcome comes later, after a manual review). The ledger line names the joined
record's coordinates.
A label whose key has no joined record (not seen yet, pushed out by ``join.max_keys``, or
older than ``join.window``) passes unchanged and is counted in
``streamchaos_join_misses_total``. The joined route's records pass to its own shadow as
usual. Both routes are read by one consumer: with several bridges in a group, the joined
topics must be co-partitioned and assigned together (the range assignor does).

>>> import json
>>> from confluent_kafka import Message
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.faults.base import FaultContext
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> cfg = FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"})
>>> ctx = FaultContext(JsonCodec(), "labels", "labels.shadow")
>>> table = ctx.joined(cfg)  # the stage makes it, before the first record
>>> declined = b'{"decision": "decline"}'
>>> pred = Message(topic="preds", partition=0, offset=41, key=b"t1", value=declined)
>>> for table in ctx.joins.taps("preds"):
...     table.observe([pred], 0, 1, JsonCodec())
>>> fault = Feedback(cfg, __import__("random").Random(1))
>>> fault.ctx = ctx
>>> label = Record("labels", 0, 3, b"t1", b'{"fraud": false}')
>>> [action] = fault.act(picks_of([label], codec=JsonCodec()), 0.0)
>>> action.injection.effect, action.injection.detail["joined"]
('drop', {'topic': 'preds', 'partition': 0, 'offset': 41})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, field_serializer, model_validator

from streamchaos.errors import FieldError
from streamchaos.faults.actions import HOLD, KEEP, Action, Hold, Release, ReplaceValue
from streamchaos.faults.actions import Drop as DropAction
from streamchaos.faults.base import BufferedFault, DecodingFault
from streamchaos.faults.hold import HoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.joins import JoinSettings, JoinSpec
from streamchaos.predicates import MISSING, Predicate, Scalar, Where, shown
from streamchaos.units import Duration


class FeedbackConfig(HoldingConfig):
    type: Literal["feedback"] = "feedback"
    example: ClassVar[dict[str, Any]] = {
        "join": {"route": "predictions"},
        "when": {"country": "DE"},
    }
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of matching labels")
    join: JoinSettings
    when: Where = Field(min_length=1, description="tests on the joined record, as where:")
    action: Literal["drop", "relabel", "delay"] = "drop"
    label_field: str | None = Field(default=None, description="relabel: the field set")
    value: Scalar = Field(default=None, description="relabel: the label's new value")
    delay: Duration | None = Field(default=None, gt=0, description="delay: how long")

    @property
    def joined(self) -> JoinSpec:
        return JoinSpec(self.join, Predicate.of(self.when), "join.route")

    @field_serializer("when")
    def _when_as_given(self, when: Where) -> dict[str, Any]:
        return shown(when)

    @model_validator(mode="after")
    def _action_settings(self) -> FeedbackConfig:
        if self.action == "relabel" and not self.label_field:
            raise ValueError("label_field: required with action: relabel")
        if self.action != "relabel" and (self.label_field is not None or self.value is not None):
            raise ValueError("label_field, value: only with action: relabel")
        if (self.action == "delay") != (self.delay is not None):
            raise ValueError("delay: required with action: delay, and only with it")
        return self


class Feedback(BufferedFault, DecodingFault):
    Config = FeedbackConfig
    purpose = (
        "feedback loop: labels dropped (censored), delayed or relabelled where the joined "
        "record, e.g. the model's prediction for the same key, matches"
    )
    config: FeedbackConfig

    def _in_order(self) -> bool:
        return True  # one delay for every label: they come due in the order held

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        for i in range(len(picks)):
            try:
                out.append(self._one(picks, i, now))
            except Exception as exc:  # bad input never stops the bridge: it passes, counted
                self.report(picks.where(i), exc)
                out.append(KEEP)
        return out

    def _one(self, picks: Picks, i: int, now: float) -> Action:
        cfg = self.config
        item = picks.items[i]
        joined = self.ctx.joined(cfg).get(item.record.key, item.record.timestamp)
        if joined is None or joined.value is MISSING:  # none, or an unreadable prediction
            self.ctx.join_missed(cfg.label)
            return KEEP
        if joined.value is not True:
            return KEEP
        note: dict[str, Any] = {"joined": joined.coordinates(), "when": shown(cfg.when)}
        if cfg.action == "drop":
            return DropAction(self.injection("drop", note))
        if cfg.action == "delay":
            assert cfg.delay is not None
            note["delay_ms"] = round(cfg.delay * 1000, 3)
            early = self._hold(now + cfg.delay, Release(item, self.injection("modify", note)))
            return Hold(early) if early else HOLD
        dec = picks.decode(i)
        if not isinstance(dec.value, dict) or cfg.label_field not in dec.value:
            raise FieldError("unknown_field", f"field {cfg.label_field!r} is not in the record")
        out = dict(dec.value)
        note.update(field=cfg.label_field, old=out[cfg.label_field], new=cfg.value)
        out[cfg.label_field] = cfg.value
        encoded = self.ctx.codec.encode(out, dec.schema, dec.schema_id)
        return ReplaceValue(encoded, self.injection("modify", note))
