"""Held records and the partitions they belong to, for ``Forwarder``: releases on the
bridge's clock, drains at a revocation, shutdown or pause, and each partition's fault
state as partitions come and go. Records held beyond the in-memory horizon are the
long-hold store's (``long_hold.py``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from streamchaos.bridge.checkpoint import TP, Batch, OffsetTracker, Run
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.long_hold import LongHolds
from streamchaos.bridge.replay import Progress
from streamchaos.bridge.setup import RouteState
from streamchaos.engine import Pipeline
from streamchaos.record import Item


class Held(ABC):
    tracker: OffsetTracker
    journal: Journal
    routes: dict[str, RouteState]
    pipelines: list[tuple[RouteState, Pipeline]]
    holds: LongHolds
    progress: Progress | None
    committed: Callable[[list[TP]], dict[TP, tuple[int, str | None]]]

    @abstractmethod
    def _new_run(
        self, batch: Batch, state: RouteState, part: int, total: int, now: float
    ) -> Run: ...

    @abstractmethod
    def _item(self, run: Run, item: Item, pos: int) -> None: ...

    @abstractmethod
    def _track(self, run: Run, item: Item) -> None: ...

    # -- held items ---------------------------------------------------------------------

    def emit(self, state: RouteState, released: dict[int, list[Item]], now: float) -> int:
        """Produce items the route's stages released, one run per partition; returns how
        many. Each is an output of its source record (read again under exactly-once, what
        was written before goes)."""
        batch, produced = self.tracker.new_batch(), 0
        for part, items in released.items():
            if self.progress is not None:
                items = [it for it in items if self.progress.take((state.name, part), it)]
            produced += self._emit_run(batch, state, part, items, now, tracked=True)
        batch.seal()
        return produced

    def emit_from_hold(
        self, state: RouteState, released: dict[int, list[Item]], now: float, batch: Batch
    ) -> int:
        """Produce items released from the long-hold topic in ``batch``, which covers their
        hold offsets: their source offsets were committed when they were held."""
        parts = released.items()
        return sum(self._emit_run(batch, state, p, items, now, False) for p, items in parts)

    def _emit_run(
        self, batch: Batch, state: RouteState, part: int, items: list[Item], now: float,
        tracked: bool,
    ) -> int:  # fmt: skip
        if not items:  # what was released was held or dropped again by a later stage
            return 0
        run = self._new_run(batch, state, part, len(items), now)
        for pos, item in enumerate(items):
            if tracked:
                self._track(run, item)
            self._item(run, item, pos)
        run.close()
        return len(items)

    def pause(self, paused: bool) -> None:
        """The kill switch: every route's faults off (or on again); while off, records
        waiting in long-hold topics go at once too."""
        for _, pipeline in self.pipelines:
            pipeline.paused = paused
        self.holds.drain(paused)

    def tick(self, now: float) -> None:
        """Schedules, episodes and releases of held records, once per loop turn."""
        self.journal.settle()
        self.journal.take_over(now)  # episodes this member writes from now on
        self.holds.tick(now)  # long-hold partitions whose next record is due read on
        for state, pipeline in self.pipelines:
            for ev in pipeline.tick(now):
                self.journal.happened(state.name, ev)
            released = pipeline.due(now)
            if released.dropped or released.deferred:
                batch = self.tracker.new_batch()
                self._drop(state.name, released.dropped, batch, now)
                self.holds.park(batch, state.name, released.deferred)
                batch.seal()
            if released.items:
                self.emit(state, released.items, now)

    def _drop(self, route: str, items: list[Item], batch: Batch, now: float) -> None:
        if self.progress is not None and items:  # read again: not the drops ledgered before
            items = self.progress.dropped(route, items)
        if items:
            self.journal.dropped(route, items, batch, now)

    def release(self, tps: list[TP] | None, now: float) -> int:
        """Emit everything held (for ``tps``, or all); returns how many records."""
        total = 0
        for state, pipeline in self.pipelines:
            parts = None if tps is None else [p for t, p in tps if t == state.name]
            if parts != []:
                total += self.emit(state, pipeline.drain(now, parts), now)
        return total

    def assigned(self, tps: list[TP], now: float) -> None:
        self.holds.assigned(tps)
        if self.progress is not None:  # exactly-once: what the last commits say
            for tp, (point, metadata) in self.committed(tps).items():
                self.progress.resume(tp, point, metadata)
        for state, pipeline in self.pipelines:
            pipeline.assigned([p for t, p in tps if t == state.name], now)

    def forget(self, tps: list[TP]) -> None:
        """Partitions this bridge reads no more: their fault state goes."""
        self.holds.forget(tps)
        if self.progress is not None:
            self.progress.forget(tps)
        for state, pipeline in self.pipelines:
            pipeline.forget([p for t, p in tps if t == state.name])

    def held_floor(self, tp: TP) -> int | None:
        state = self.routes.get(tp[0])
        pipeline = state.pipeline if state is not None else None
        return pipeline.oldest_held(tp[1]) if pipeline is not None else None
