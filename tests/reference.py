"""The bridge's semantics, one record at a time, written for clarity, not speed.

The bridge picks records for a whole batch, hands each stage its picks at once, and
produces most records straight from the consumed message. This reference does none of
that: each consumed record goes through the route's faults in config order, by itself;
selection is worked out from its definition (DESIGN invariant 3) for that one record. The
tests feed both the same input and compare the shadow records and the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from streamchaos.config import Route
from streamchaos.faults import Fault, FaultConfig
from streamchaos.faults.base import FaultContext, HoldingFault, ObservingFault
from streamchaos.faults.picks import Decodes, Picks
from streamchaos.faults.registry import FAULTS
from streamchaos.record import Item, Record
from streamchaos.selection import RecordRandom, base_seed, key_uniform, splitmix, uniform

RNG_SALT = 0x5EED_5EED_5EED_5EED


@dataclass
class Output:
    """A shadow record: where it came from and what it holds."""

    origin: tuple[str, int, int]  # source topic, partition, offset
    key: bytes | None
    value: bytes | None
    headers: tuple[Any, ...]
    timestamp: int


class RefStage:
    """One fault of the route: its selection, by definition, and an instance per partition."""

    def __init__(self, config: FaultConfig, topic: str, seed: int, ctx: FaultContext) -> None:
        self.config, self.topic, self.seed, self.ctx = config, topic, seed, ctx
        self.name = config.label
        self.cls = FAULTS[config.type]
        self.instances: dict[int, Fault] = {}
        self.intensity = 0.0
        rate = config.max_injections_per_second
        self.rate, self.tokens, self.last = rate, rate, 0.0

    def instance(self, partition: int) -> Fault:
        if partition not in self.instances:
            rng = RecordRandom(base_seed(self.seed, self.name, self.topic, partition, "rng"))
            inst = self.cls(self.config, rng)
            inst.ctx = self.ctx  # type: ignore[attr-defined]
            self.instances[partition] = inst
        return self.instances[partition]

    def selects(self, record: Record, now: float) -> bool:
        """fraction × intensity (or the fraction alone when drift ramps by magnitude),
        against the record's draw; then the budget, one token a record."""
        if self.intensity <= 0:
            return False
        p = self.config.fraction
        if getattr(self.config, "ramp_by", None) != "magnitude":
            p *= self.intensity
        if self.config.select == "key":
            draw = key_uniform(base_seed(self.seed, self.name, self.topic, "key"), record.key)
        else:
            draw = uniform(
                base_seed(self.seed, self.name, self.topic, record.partition), record.offset
            )
        return draw < p and self._token(now)

    def _token(self, now: float) -> bool:
        if self.rate is None:
            return True
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def picks(self, item: Item) -> Picks:
        base = base_seed(self.seed, self.name, self.topic, item.record.partition)

        def seeds(offsets: list[int]) -> list[int]:
            return [splitmix(base ^ RNG_SALT ^ offset) for offset in offsets]

        return Picks([item], seeds, Decodes(self.ctx.codec))


@dataclass
class Reference:
    """A route's faults applied one record at a time; what lands where, and the ledger."""

    route: Route
    seed: int
    ctx: FaultContext
    stages: list[RefStage] = field(init=False)
    shadow: dict[int, list[Output]] = field(default_factory=lambda: defaultdict(list))
    lines: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stages = [
            RefStage(f, self.route.source, self.seed, self.ctx) for f in self.route.faults
        ]

    def tick(self, now: float) -> None:
        """Schedules move on; what holding faults release now goes through the faults
        after theirs, then to the shadow."""
        for stage in self.stages:
            intensity = stage.config.schedule.intensity(now)
            if intensity > 0 >= stage.intensity:  # an episode starts
                for inst in stage.instances.values():
                    inst.episode_started()
            stage.intensity = intensity
        for k, stage in enumerate(self.stages):
            for inst in list(stage.instances.values()):
                if isinstance(inst, HoldingFault):
                    for release in inst.due(now):
                        self._emit_all(
                            self._through(self.stages[k + 1 :], release.resume(), now), now
                        )

    def consume(self, record: Record, now: float) -> None:
        self._emit_all(self._through(self.stages, Item(record), now), now)

    def drain(self, now: float) -> None:
        """Shutdown: everything held goes to the shadow as it is."""
        for stage in self.stages:
            for inst in stage.instances.values():
                if isinstance(inst, HoldingFault):
                    self._emit_all([r.resume() for r in inst.drain(now)], now)

    def _through(self, stages: list[RefStage], item: Item, now: float) -> list[Item]:
        items = [item]
        for stage in stages:
            after: list[Item] = []
            for it in items:
                picked = stage.selects(it.record, now)
                inst = stage.instance(it.record.partition)
                if isinstance(inst, ObservingFault):
                    [action] = inst.scan(stage.picks(it), [picked], now)
                elif picked:
                    [action] = inst.act(stage.picks(it), now)
                else:
                    after.append(it)
                    continue
                dropped: list[Item] = []
                after.extend(action.apply(it, dropped))
                for gone in dropped:
                    self._lines(gone, None, "dropped", now)
            items = after
        return items

    def _emit_all(self, items: list[Item], now: float) -> None:
        for item in items:
            rec = item.record
            out = self.shadow[rec.partition]
            self._lines(
                item,
                {"topic": self.route.shadow, "partition": rec.partition, "offset": len(out)},
                "delivered",
                now,
            )
            origin = (rec.topic, rec.partition, rec.offset)
            out.append(Output(origin, rec.key, rec.value, tuple(rec.headers), rec.timestamp))

    def _lines(self, item: Item, shadow: dict[str, Any] | None, status: str, now: float) -> None:
        rec = item.record
        for inj in item.injections:
            self.lines.append(
                {
                    "fault": inj.fault,
                    "type": inj.type,
                    "effect": inj.effect,
                    "status": status,
                    "source": {
                        "topic": rec.topic,
                        "partition": rec.partition,
                        "offset": rec.offset,
                    },
                    "shadow": shadow,
                    "at": int(now * 1000),
                    "detail": inj.detail,
                }
            )
