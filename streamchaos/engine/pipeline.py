"""A route's faults as a pipeline of stages over a consumed batch. Pure: no Kafka here.

For a run of consecutive records of one partition, each stage selects its records for the
whole run at once; only the records some stage selected become ``Item``s. Each stage's
fault answers its picks with typed actions, and what comes out of one stage goes into the
next, in order. The result (``Plan``) names, by batch index, what replaces each record a
stage touched; every other record is produced as it was consumed. Items a holding stage
releases later (``due``) continue through the stages after it; items it defers to the
bridge's long-hold store (``Deferred``) do when the store gives them back (``resume``).
All state is per source partition, so a partition can move between bridge processes.

The schedules follow the bridge's clock (``now``, once per loop turn), or under the event
clock (``clock.py``) each record's own time: a run is then planned in segments of equal
experiment time, and the watermark moves the episodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from streamchaos.engine.clock import WALL, EpisodeEvent, WallClock
from streamchaos.engine.plan import Cells, Deferred, Plan, Released
from streamchaos.engine.stage import Hits, Stage
from streamchaos.engine.windows import Marks
from streamchaos.faults import FaultConfig
from streamchaos.faults.actions import KEEP
from streamchaos.faults.base import FaultContext
from streamchaos.faults.picks import Decodes, Picks
from streamchaos.record import Item


class Pipeline:
    """The fault pipeline of one route."""

    def __init__(
        self,
        topic: str,
        faults: Iterable[FaultConfig],
        seed: int,
        ctx: FaultContext | None = None,
        clock: WallClock = WALL,
    ) -> None:
        self.topic, self.seed, self.ctx, self.clock = topic, seed, ctx, clock
        self.stages = [self._new(cfg) for cfg in faults]
        self.codec = ctx.codec if ctx is not None else None
        self.paused = False
        self.marks = Marks()  # event clock: how far each partition's records reached

    def _new(self, config: FaultConfig) -> Stage:
        return Stage(config, self.topic, self.seed, self.ctx, self.clock.by_event)

    # -- live changes (at a batch boundary) ----------------------------------------------

    def add(self, config: FaultConfig, now: float, at: int | None = None) -> Stage:
        """A new stage (last, or at index ``at``) whose schedule counts from ``now`` (the
        watermark, under the event clock)."""
        stage = self._new(config)
        stage.origin = self.clock.origin(now, self.marks)
        self.stages.insert(len(self.stages) if at is None else at, stage)
        return stage

    def remove(self, name: str, now: float) -> tuple[int, Stage, dict[int, list[Item]]]:
        """Take stage ``name`` out: its index, the stage, and everything it held, released
        at ``now`` as it is (per partition), so nothing held is lost."""
        k = next(k for k, s in enumerate(self.stages) if s.name == name)
        stage = self.stages.pop(k)
        out: dict[int, list[Item]] = {}
        _drain(stage, now, list(stage.instances), out)
        if stage.ctx is not None:  # a joining fault's key table is fed no more
            stage.ctx.joins.forget(stage.ctx.source, stage.name)
        return k, stage, out

    # -- time ---------------------------------------------------------------------------

    def tick(self, now: float) -> list[EpisodeEvent]:
        """Episodes that start or end by ``now`` (the bridge's clock, once per turn)."""
        return self.clock.episodes(self.stages, now, self.marks, self.paused)

    def close(self, now: float) -> list[EpisodeEvent]:
        """At shutdown: every open episode ends (the ledger pairs every start)."""
        return self.clock.close(self.stages, now, self.marks, self.paused)

    def active(self) -> list[Stage]:
        return [] if self.paused else [s for s in self.stages if s.probability > 0]

    # -- consumed runs ------------------------------------------------------------------

    def plan(self, partition: int, msgs: Sequence[Any], start: int, count: int, now: float) -> Plan:
        """The stages over ``msgs[start:start+count]``: consecutive offsets of one partition,
        planned at the clock's time (under the event clock, in runs of equal time)."""
        self.consumed(count)
        segments = self.clock.segments(msgs, start, start + count, now, self.marks, partition)
        plans = [self._plan(partition, msgs, lo, hi - lo, now, at) for lo, hi, at in segments]
        if len(plans) == 1:
            return plans[0]
        return Plan(
            {i: out for plan in plans for i, out in plan.outputs.items()},
            [item for plan in plans for item in plan.dropped],
            [i for plan in plans for i in plan.passed],
            [d for plan in plans for d in plan.deferred],
        )

    def _plan(
        self, partition: int, msgs: Sequence[Any], start: int, count: int, now: float, at: float
    ) -> Plan:
        self.clock.enter(self.stages, at, self.paused, partition, count)
        stages = self.active()
        if not stages:
            return Plan({}, [])
        first = msgs[start].offset()
        batch: list[Hits | None] = []  # None: the stage looks at every record of the run
        for stage in stages:
            if stage.by_key or stage.observes:
                batch.append(None)
            else:
                hits = stage.hits(partition, first, count)
                batch.append((frozenset(hits), first, first + count))
        if None in batch:  # an active key-mode or observing stage
            picked: Iterable[int] = range(start, start + count)
        else:
            offsets = set().union(*(b[0] for b in batch if b is not None))
            picked = sorted(start + off - first for off in offsets)
        cells = {i: [Item.of(msgs[i])] for i in picked}
        if not cells:
            return Plan(cells, [])
        aside = Released()
        decodes = Decodes(self.codec) if self.codec is not None else None
        for stage, stage_hits in zip(stages, batch, strict=True):
            self._stage(stage, partition, cells, (now, at), aside, decodes, stage_hits)
        passed = [i for i, items in cells.items() if len(items) == 1 and items[0].as_consumed]
        for i in passed:
            del cells[i]  # picked, but passed on as it came: produced as the others
        return Plan(cells, aside.dropped, passed, aside.deferred)

    def _stage(
        self,
        stage: Stage,
        partition: int,
        cells: Cells,
        times: tuple[float, float],
        aside: Released,
        decodes: Decodes | None,
        batch: Hits | None = None,
    ) -> None:
        """One stage over the items in ``cells`` (in order), which it updates in place;
        what it drops or defers goes to ``aside``. ``times``: the bridge's clock (holds)
        and the schedules' (the budget)."""
        now, at = times
        keys, items = [], []
        for key, here in cells.items():
            for item in here:
                keys.append(key)
                items.append(item)
        if not items:
            return
        chosen = stage.chooses(partition, items, at, batch, decodes)
        inst, seeds = stage.instance(partition), stage.seeds_of(partition)
        if stage.observes:
            picked: Sequence[int] = range(len(items))
            actions = inst.scan(Picks(items, seeds, decodes), chosen, now)  # type: ignore[attr-defined]
        else:
            picked = [i for i, c in enumerate(chosen) if c]
            if not picked:
                return
            actions = inst.act(Picks([items[i] for i in picked], seeds, decodes), now)
        acted = 0
        for i, action in zip(picked, actions, strict=True):
            if action is KEEP:
                continue
            acted += 1
            key, item = keys[i], items[i]
            here = cells[key]
            if len(here) == 1:  # the common case: the record is still one item
                cells[key] = action.apply(item, aside.dropped)
            else:
                j = next(n for n, it in enumerate(here) if it is item)
                cells[key] = [*here[:j], *action.apply(item, aside.dropped), *here[j + 1 :]]
            if action.until is not None:  # ``Defer``: to the long-hold store
                seconds = action.until - now
                aside.deferred.append(Deferred(item, action.until, seconds, stage.name))
        if stage.windows is not None and acted:
            stage.windows.count(at - stage.origin, 0, acted)

    # -- held items ---------------------------------------------------------------------

    def due(self, now: float) -> Released:
        """What holding stages release at ``now``."""
        out = Released()
        for k, stage in enumerate(self.stages):
            if not stage.holds:
                continue
            for part in list(stage.instances):
                inst = stage.holding(part)
                released = inst.due(now) if inst is not None else []
                if released:
                    items = [r.resume() for r in released]
                    resumed = self.resume(k + 1, part, items, now, out)
                    out.items.setdefault(part, []).extend(resumed)
        return out

    def after(self, name: str) -> int:
        """The index of the stage after the one named ``name`` (a deferred item resumes
        there); past the last when no stage has that name any more (a live change)."""
        names = [stage.name for stage in self.stages]
        return names.index(name) + 1 if name in names else len(names)

    def resume(
        self, after: int, partition: int, items: list[Item], now: float, aside: Released
    ) -> list[Item]:
        """``items`` through the stages from index ``after`` on, in order (under the event
        clock, each at its own time); what they drop or defer goes to ``aside``."""
        out = []
        for at, group in self.clock.groups(items, now, self.marks.last(partition)):
            self.clock.enter(self.stages, at, self.paused, partition, 0)  # counted when read
            out += self._resume(after, partition, group, (now, at), aside)
        return out

    def _resume(
        self,
        after: int,
        partition: int,
        items: list[Item],
        times: tuple[float, float],
        aside: Released,
    ) -> list[Item]:
        later = [] if self.paused else [s for s in self.stages[after:] if s.probability > 0]
        if not later:
            return items
        cells = {n: [item] for n, item in enumerate(items)}
        decodes = Decodes(self.codec) if self.codec is not None else None
        for stage in later:
            self._stage(stage, partition, cells, times, aside, decodes)
        return [item for key in sorted(cells) for item in cells[key]]

    def drain(self, now: float, partitions: Iterable[int] | None = None) -> dict[int, list[Item]]:
        """Everything held for these partitions (all when None), released at ``now`` as it
        is (not through the later stages: a shutdown or a pause passes records on), in
        stage order."""
        out: dict[int, list[Item]] = {}
        for stage in self.stages:
            if stage.holds:
                parts = list(stage.instances) if partitions is None else list(partitions)
                _drain(stage, now, parts, out)
        return out

    # -- bookkeeping --------------------------------------------------------------------

    def consumed(self, count: int) -> None:
        """``count`` records of the route arrived: the denominator of realised fractions."""
        for stage in self.stages:
            if stage.intensity > 0:
                stage.seen += count

    def oldest_held(self, partition: int) -> int | None:
        oldest = None
        for stage in self.stages:
            inst = stage.holding(partition)
            off = inst.oldest_held() if inst is not None else None
            if off is not None and (oldest is None or off < oldest):
                oldest = off
        return oldest

    def held_offsets(self, partition: int) -> list[int]:
        """The source offset of every item held for ``partition``, by any stage."""
        return [
            offset
            for stage in self.stages
            if (inst := stage.holding(partition)) is not None
            for offset in inst.held_offsets()
        ]

    def held(self, stage: Stage) -> int:
        return sum(inst.held() for p in stage.instances if (inst := stage.holding(p)) is not None)

    def assigned(self, partitions: Iterable[int], now: float) -> None:
        """Partitions of the route this bridge now reads: the watermark waits for them."""
        self.marks.assigned(list(partitions), now)

    def forget(self, partitions: Iterable[int]) -> None:
        parts = list(partitions)
        self.marks.forget(parts)
        for stage in self.stages:
            for part in parts:
                stage.forget(part)


def _drain(stage: Stage, now: float, partitions: list[int], out: dict[int, list[Item]]) -> None:
    """What ``stage`` holds for ``partitions``, released at ``now`` as it is, into ``out``."""
    for part in partitions:
        inst = stage.holding(part)
        released = inst.drain(now) if inst is not None else []
        if released:
            out.setdefault(part, []).extend(r.resume() for r in released)
