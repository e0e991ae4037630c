"""What the bridge records of what it did: ledger lines, counters, episodes, gauges.

Faults do no I/O; their injections travel with the items. An injection is ledgered when
its output landed (with the shadow coordinates), or at once for a drop; without a ledger it
is counted when produced. Counters catch up once per loop turn (``settle``), one ``inc``
per label set, so counters and ledger agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from streamchaos.bridge.checkpoint import Batch, OffsetTracker, Run
from streamchaos.bridge.setup import RouteState
from streamchaos.bridge.shared_clock import Scribe
from streamchaos.config import Config
from streamchaos.engine import EpisodeEvent, Pipeline, Stage
from streamchaos.ledger import Ledger, coords
from streamchaos.metrics import Metrics
from streamchaos.record import Item

log = logging.getLogger(__name__)


class Journal:
    def __init__(
        self,
        cfg: Config,
        ledger: Ledger,
        metrics: Metrics,
        epoch: float,
        routes: dict[str, RouteState] | None = None,
        scribe: Scribe | None = None,
    ) -> None:
        self.experiment = cfg.experiment
        self.ledger = ledger
        self.metrics = metrics
        self.active = ledger.active  # lines are written: outputs report where they landed
        self.epoch = epoch  # wall-clock seconds at experiment time 0
        start_ms = cfg.start_ms if cfg.clock == "wall" else None  # exact, when start_at given
        self.zero_ms = start_ms if start_ms is not None else round(epoch * 1000)
        self.routes = routes if routes is not None else {}  # their totals count what landed
        self._consumed = {r.source: metrics.consumed.labels(route=r.source) for r in cfg.routes}
        self._tallies: dict[tuple[str, str, str], list[Any]] = {}  # counter, stage, pending
        self._stages: dict[tuple[str, str], Stage] = {}
        self.scribe = scribe  # a shared clock: one member writes a route's episodes

    def watch(self, route: str, pipeline: Pipeline) -> None:
        """Injections of ``pipeline``'s stages count towards their episodes."""
        for stage in pipeline.stages:
            self._stages[(route, stage.name)] = stage
        for (r, fault, kind), pending in self._tallies.items():  # a replaced stage's successor
            if r == route:
                pending[1] = self._stage_of(route, fault, kind)

    def retire(self, route: str, stage: Stage) -> None:
        """A stage taken out of ``route``'s pipeline: it counts nothing more, and its
        gauges fall to 0."""
        if self._stages.get((route, stage.name)) is stage:
            del self._stages[(route, stage.name)]
        labels = {"experiment": self.experiment, "route": route, "fault": stage.name}
        self.metrics.fault_active.labels(**labels).set(0)
        self.metrics.fault_intensity.labels(**labels).set(0)
        self.metrics.held.labels(route=route, fault=stage.name).set(0)

    def landed(self, batch: Batch) -> None:
        """A batch of outputs completed: count what landed and what finally failed, per
        route (the routes' totals and their counters)."""
        for name, count in batch.landed.items():
            self.routes[name].produced += count
            self.metrics.produced.labels(route=name).inc(count)
        for name, count in batch.failed.items():
            self.routes[name].failed += count
            self.metrics.produce_errors.labels(route=name).inc(count)

    def add_route(self, route: str) -> None:
        """A route added while the bridge runs (a topic a pattern matched)."""
        self._consumed[route] = self.metrics.consumed.labels(route=route)

    def at_ms(self, now: float) -> int:
        return int((self.epoch + now) * 1000)

    def consumed(self, route: str, count: int) -> None:
        self._consumed[route].inc(count)

    # -- injections ---------------------------------------------------------------------

    def item_landed(self, run: Run, item: Item, err: Any, msg: Any) -> None:
        """The delivery report of an output whose injections are ledgered (a ledger only):
        their lines, with the shadow coordinates. Lines bound for the ledger topic join the
        run's batch first, so the source offset stays uncommitted until they land."""
        shadow, status = (None, "failed") if err is not None else (_coords(msg), "delivered")
        self._lines(run.route, item, shadow, status, run.at_ms, run.batch)

    def dropped(self, route: str, items: Iterable[Item], batch: Batch, now: float) -> None:
        """Items no output will follow: ledgered now."""
        at_ms = self.at_ms(now)
        for item in items:
            topic, partition, offset = item.source
            batch.cover((topic, partition), offset)
            self._lines(route, item, None, "dropped", at_ms, batch)

    def _lines(
        self, route: str, item: Item, shadow: Any, status: str, at_ms: int, batch: Batch
    ) -> None:
        report, source = self._line_report(batch, route), item.source
        lines = 0
        for inj in item.injections:
            lines += self.ledger.injection(route, inj, source, shadow, status, at_ms, report)
            self._tally(route, inj.fault, inj.type)[2] += 1
        if lines:
            batch.expect(lines)

    def count(self, route: str, item: Item) -> None:
        """Injections of an output with no line to write: counted when produced."""
        for inj in item.injections:
            self._tally(route, inj.fault, inj.type)[2] += 1

    def lineage(self, run: Run) -> None:
        """Where a landed run's records are in the shadow (the ``lineage`` ledger line)."""
        topic, part = run.shadow
        assert run.base is not None
        if self.ledger.lineage(
            run.route,
            run.source,
            (topic, part, run.base),
            run.segments,
            run.at_ms,
            self._line_report(run.batch, run.route),
        ):
            run.batch.expect()

    def _line_report(self, batch: Batch, route: str) -> Callable[[Any, Any], None] | None:
        """The delivery callback of ``route``'s lines for the ledger topic (None without
        one): their acknowledgement completes ``batch`` too."""
        return partial(batch.on_line_delivery, route) if self.ledger.producer else None

    def _tally(self, route: str, fault: str, kind: str) -> list[Any]:
        """[counter, stage, count not yet settled] of one route, fault and fault type."""
        key = (route, fault, kind)
        pending = self._tallies.get(key)
        if pending is None:
            counter = self.metrics.injections.labels(
                experiment=self.experiment, route=route, fault=fault, type=kind
            )
            pending = self._tallies[key] = [counter, self._stage_of(route, fault, kind), 0]
        return pending

    def _stage_of(self, route: str, fault: str, kind: str) -> Stage | None:
        """The stage whose episode an injection counts towards: by name and type (a stage
        replaced by one of another type is not credited with its predecessor's)."""
        stage = self._stages.get((route, fault))
        return stage if stage is not None and stage.config.type == kind else None

    def settle(self) -> None:
        """Counters and episode tallies catch up with the injections since the last call
        (once per loop turn, and before episodes end)."""
        for pending in self._tallies.values():
            if pending[2]:
                pending[0].inc(pending[2])
                if pending[1] is not None:
                    pending[1].injected += pending[2]
                    pending[1].total += pending[2]
                pending[2] = 0
        if self.scribe is not None:  # what lines that landed say was written
            self.scribe.send()

    # -- episodes and gauges ------------------------------------------------------------

    def episode(
        self,
        route: str,
        stage: Stage,
        kind: str,
        at: float,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        bound: float | None = None,
        window: int | None = None,
    ) -> None:
        """An episode line; ``reason``: why an episode ended before its schedule did
        (``extra``: what goes with it, e.g. the detection delay); ``bound``: the
        schedule's time of it, written as ``scheduled_at`` (epoch ms). With a shared
        clock, only the route's writer writes it, once (``shared_clock.py``)."""
        labels = {"experiment": self.experiment, "route": route, "fault": stage.name}
        self.metrics.fault_active.labels(**labels).set(1 if kind == "episode_start" else 0)
        on_delivery = None
        if self.scribe is not None:
            mark = self.scribe.take(route, stage, kind, window, reason == "detected")
            if mark is None:
                return
            on_delivery = self.scribe.wrote(route, stage.name, mark, self.ledger.delivered)
        cfg = stage.config
        detail = cfg.model_dump(mode="json", exclude={"type", "name"})
        if kind == "episode_end" and not (extra or {}).get("late"):  # late: not this one's
            detail.update(stage.episode_stats())
        if reason is not None:
            detail["reason"] = reason
        if bound is not None:
            detail["scheduled_at"] = self.zero_ms + round(bound * 1000)
        detail.update(extra or {})
        self.ledger.event(route, stage.name, cfg.type, kind, self.at_ms(at), detail, on_delivery)
        log.info("%s: fault %s (%s) %s", route, stage.name, cfg.type, kind.replace("_", " "))

    def all_gauges(self, pipelines: Iterable[tuple[RouteState, Pipeline]]) -> None:
        for state, pipeline in pipelines:
            self.gauges(state.name, pipeline)

    def lags(self, tracker: OffsetTracker) -> None:
        """Each route's consumed records not yet covered by a commit."""
        reads = tracker.reads()
        for name in self.routes:
            lag = sum(tracker.lag(tp) for tp in reads if tp[0] == name)
            self.metrics.commit_lag.labels(route=name).set(lag)

    def gauges(self, route: str, pipeline: Pipeline) -> None:
        for stage in pipeline.stages:
            labels = {"experiment": self.experiment, "route": route, "fault": stage.name}
            self.metrics.fault_intensity.labels(**labels).set(stage.intensity)
            self.metrics.held.labels(route=route, fault=stage.name).set(pipeline.held(stage))
            table = stage.ctx.joins.get(route, stage.name) if stage.ctx is not None else None
            if table is not None:  # a joining fault: its key table's size and evictions
                self.metrics.join_keys.labels(route=route, fault=stage.name).set(len(table))
                new = table.evicted - table.evictions_counted
                if new:
                    self.metrics.join_evictions.labels(route=route, fault=stage.name).inc(new)
                    table.evictions_counted = table.evicted

    def close_episodes(self, route: str, pipeline: Pipeline, now: float) -> None:
        """At shutdown, active episodes end (the ledger must pair every start); with a
        shared clock, only where no other member carries the route's faults on."""
        state = self.routes.get(route)
        alone = self.scribe is None or self.scribe.alone(route, state.parts if state else 0)
        for ev in pipeline.close(now):
            if alone:
                self.happened(route, ev)

    def happened(self, route: str, ev: EpisodeEvent) -> None:
        """An episode's start or end the clock found."""
        self.episode(
            route, ev.stage, ev.kind, ev.at, extra=ev.extra, bound=ev.bound, window=ev.window
        )

    def assigned(self, tps: list[tuple[str, int]]) -> None:
        if self.scribe is not None:  # routes' partitions (not the long-hold topics')
            self.scribe.assigned([tp for tp in tps if tp[0] in self.routes])

    def take_over(self, now: float) -> None:
        """Routes whose partition 0 came since the last turn: the lines they owe."""
        if self.scribe is not None and self.scribe.owed:
            pipelines = {n: s.pipeline for n, s in self.routes.items() if s.pipeline is not None}
            for route, ev in self.scribe.take_over(pipelines, now):
                self.happened(route, ev)

    def revoked(self, tps: list[tuple[str, int]], lost: bool = False) -> None:
        if self.scribe is not None:
            self.scribe.revoked([tp for tp in tps if tp[0] in self.routes], lost)


def _coords(msg: Any) -> dict[str, Any]:
    return coords(msg.topic(), msg.partition(), msg.offset())
