"""One configured fault on one route: which records it selects, and its state per partition.

Selection is a pure function of (seed, fault name, topic, partition, offset), or of the
key in key mode (DESIGN invariant 3), times the schedule's intensity, then the budget
(``max_injections_per_second``, which only ever lets fewer through). For a consumed batch
the draws of a whole range of offsets are made at once (numpy) and kept for the offsets
ahead, so a batch costs a comparison per offset, not a hash.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamchaos.codec.wire import Undecodable
from streamchaos.engine.windows import Windows
from streamchaos.faults import Fault, FaultConfig
from streamchaos.faults.base import FaultContext, HoldingFault, ObservingFault
from streamchaos.faults.picks import Decodes
from streamchaos.faults.registry import FAULTS
from streamchaos.predicates import Predicate, text
from streamchaos.record import Item
from streamchaos.selection import (
    RecordRandom,
    base_seed,
    key_uniform,
    splitmix,
    uniform,
    uniforms,
)

RNG_SALT = 0x5EED_5EED_5EED_5EED
Hits = tuple[frozenset[int], int, int]  # offsets a stage selects in [lo, hi), lo, hi
DRAW_WINDOW = 4096  # offsets whose selection draws are computed at once, per partition


class Budget:
    """Token bucket for ``max_injections_per_second`` (the blast-radius limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = 0.0

    def admit(self, count: int, now: float) -> int:
        """How many of ``count`` selections at ``now`` the bucket lets through (the first
        ones: tokens taken one by one at the same instant)."""
        self.tokens = min(self.rate, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)
        taken = min(count, int(self.tokens))
        self.tokens -= taken
        return taken


class Stage:
    """Selection plus one fault instance per source partition."""

    def __init__(
        self,
        config: FaultConfig,
        topic: str,
        seed: int,
        ctx: FaultContext | None = None,
        event_clock: bool = False,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.label
        self.topic = topic
        self.seed = seed
        self.cls: type[Fault] = FAULTS[config.type]
        if config.joined is not None and ctx is not None:
            ctx.joined(config)  # from now on, the joined route's records feed its table
        self.holds = issubclass(self.cls, HoldingFault)  # capabilities: checked once, by type
        self.observes = issubclass(self.cls, ObservingFault)
        self.by_key = config.select == "key"
        self.where = Predicate.of(config.where) if config.where else None
        self.instances: dict[int, Fault] = {}
        self.rate = config.max_injections_per_second  # None: no limit
        self.budgets: dict[int, Budget] = {}  # one for the stage (-1), or per partition
        self.budget_per_partition = event_clock
        # under the event clock: its episodes, and one bucket per partition (the only
        # order of records a replay repeats)
        self.windows = Windows(config.schedule) if event_clock else None
        self.in_episode = False
        self.window: int | None = None  # wall clock: the schedule window it last started in
        self._entered: dict[int, int] = {}  # event clock: the window each partition is in
        self.intensity = 0.0
        self.origin = 0.0  # experiment time its schedule counts from (a live add: then)
        self.started = 0.0  # experiment time its current (or last) episode started
        self.stopped = False  # its stop_on alert fired: off for the rest of the run
        self.seen = self.injected = 0  # records and ledgered injections in this episode
        self.total = 0  # injections since the stage was made
        self._bases: dict[int, int] = {}
        self._key_base = base_seed(seed, self.name, topic, "key")
        self._ramp_by_magnitude = getattr(config, "ramp_by", None) == "magnitude"
        self._draws: dict[int, _Window] = {}  # per partition

    def instance(self, partition: int) -> Fault:
        inst = self.instances.get(partition)
        if inst is None:
            rng = RecordRandom(base_seed(self.seed, self.name, self.topic, partition, "rng"))
            inst = self.instances[partition] = self.cls(self.config, rng)
            inst.timeline = lambda now: self.intensity  # as the last tick set it
            if self.ctx is not None:
                inst.ctx = self.ctx  # type: ignore[attr-defined]
        return inst

    def holding(self, partition: int) -> HoldingFault | None:
        inst = self.instances.get(partition)
        return inst if isinstance(inst, HoldingFault) else None

    def base(self, partition: int) -> int:
        base = self._bases.get(partition)
        if base is None:
            base = self._bases[partition] = base_seed(self.seed, self.name, self.topic, partition)
        return base

    def seeds_of(self, partition: int) -> Callable[[list[int]], list[int]]:
        """offsets → what the fault's generator is seeded with for each record: replaying
        an offset repeats its draws."""
        salt = self.base(partition) ^ RNG_SALT
        return lambda offsets: [splitmix(salt ^ offset) for offset in offsets]

    @property
    def probability(self) -> float:
        """fraction × intensity; with ``ramp_by: magnitude`` the fault scales its effect
        by the intensity instead, so every selected record changes a little more."""
        if self.intensity <= 0:
            return 0.0
        if self._ramp_by_magnitude:
            return self.config.fraction
        return self.config.fraction * self.intensity

    def set_intensity(self, value: float) -> None:
        self.intensity = value

    def hits(self, partition: int, first: int, count: int) -> list[int]:
        """Offsets in [first, first+count) this record-mode stage selects, ascending
        (before the budget)."""
        p = self.probability
        if p <= 0:
            return []
        window = self._draws.get(partition)
        if window is None or not window.first <= first <= first + count <= window.end:
            span = max(count, DRAW_WINDOW)
            window = self._draws[partition] = _Window(
                first, uniforms(self.base(partition), first, span)
            )
        return window.hits(p, first, first + count)

    def chooses(
        self,
        partition: int,
        items: Sequence[Item],
        now: float,
        batch: Hits | None = None,
        decodes: Decodes | None = None,
    ) -> list[bool]:
        """Which of ``items`` (of ``partition``, in order) this stage selects. ``batch``:
        what ``hits`` found for the consumed batch's range, looked up for items from it;
        an item from before it (released from a hold) is drawn again, with the same result.
        Drawn records outside ``where:`` are not selected (tested after the draw)."""
        p = self.probability
        if p <= 0:
            return [False] * len(items)
        if self.by_key:
            kb = self._key_base
            chosen = [key_uniform(kb, item.key) < p for item in items]
        else:
            base = self.base(partition)
            hits, lo, hi = batch if batch is not None else (frozenset(), 0, 0)
            chosen = [
                (off in hits) if lo <= off < hi else uniform(base, off) < p
                for off in (item.offset for item in items)
            ]
        if self.where is not None:
            where, ctx = self.where, self.ctx
            chosen = [
                c and matches(where, item, partition, decodes, ctx)
                for c, item in zip(chosen, items, strict=True)
            ]
        return self._within_budget(chosen, partition, now)

    def _within_budget(self, chosen: list[bool], partition: int, now: float) -> list[bool]:
        wanted = chosen.count(True)
        if self.rate is None or wanted == 0:  # the bucket is asked once per selection
            return chosen
        key = partition if self.budget_per_partition else -1
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = Budget(self.rate)
        allowed = budget.admit(wanted, now)
        for i, c in enumerate(chosen):
            if c:
                chosen[i] = allowed > 0
                allowed -= 1
        return chosen

    def forget(self, partition: int) -> None:
        self.instances.pop(partition, None)
        self._draws.pop(partition, None)
        self.budgets.pop(partition, None)
        self._entered.pop(partition, None)

    def enter_window(self, partition: int, t: float) -> None:
        """Event clock: a window ``partition`` enters starts the fault's episode state over."""
        k = self.config.schedule.window_index(t)
        if k is not None and self._entered.get(partition) != k:
            self._entered[partition] = k
            inst = self.instances.get(partition)
            if inst is not None:
                inst.episode_started()

    def begin_episode(self, now: float) -> None:
        """An episode starts at ``now`` (the bridge's clock): its counts start from 0."""
        self.in_episode = True
        self.seen = self.injected = 0
        self.started = now
        if self.windows is None:  # event clock: by the records' time (``enter_window``)
            for inst in self.instances.values():
                inst.episode_started()

    def stop(self) -> None:
        """Off for the rest of the run (its ``stop_on`` alert fired); the caller ended
        its episode."""
        self.stopped, self.in_episode = True, False
        self.set_intensity(0.0)
        if self.windows is not None:
            self.windows.stop()

    def episode_stats(self) -> dict[str, float | int]:
        """The current episode's records and injections (under the event clock: the
        records in its window, and those the fault acted on)."""
        seen, injected = (
            self.windows.stats() if self.windows is not None else (self.seen, self.injected)
        )
        return stats(seen, injected)


def stats(records: int, injected: int) -> dict[str, float | int]:
    share = injected / records if records else 0.0
    return {"records": records, "injected": injected, "realised_fraction": round(share, 6)}


def matches(
    where: Predicate, item: Item, partition: int, decodes: Decodes | None, ctx: Any
) -> bool:
    """Whether ``item`` is in the ``where:`` segment. A value that cannot be decoded is
    not (counted as undecodable); nothing a record holds makes this raise."""
    try:
        value = None
        if where.needs_value:
            if decodes is None:
                return False
            value = decodes.decode(item.value).value
        record = item.record
        headers: dict[str, str | None] = {}
        if where.needs_headers:
            for name, data in record.headers or ():
                headers.setdefault(name, text(data))
        return where.test(value, headers, text(record.key), partition)
    except Undecodable as exc:
        if ctx is not None:
            ctx.undecodable(exc.reason)
        return False
    except Exception:  # a value too deep or too large to compare: not in the segment
        if ctx is not None:
            ctx.undecodable("where_error")
        return False


class _Window:
    """Selection draws of a range of offsets of one partition, and the offsets they select
    at ``p``, a probability asked for more than once."""

    __slots__ = ("asked", "draws", "end", "first", "p", "selected")

    def __init__(self, first: int, draws: np.ndarray) -> None:
        self.first, self.end, self.draws = first, first + len(draws), draws
        self.p = self.asked = -1.0
        self.selected: list[int] = []

    def hits(self, p: float, lo: int, hi: int) -> list[int]:
        """Offsets in [lo, hi) whose draw is below ``p``, ascending. The whole window's
        are worked out when the last call that compared only its range (``asked``) had
        this ``p`` too; while a ramp changes it every tick, only the range asked for is
        compared."""
        if p != self.p:
            if p != self.asked:
                self.asked = p
                start = lo - self.first
                return (np.flatnonzero(self.draws[start : hi - self.first] < p) + lo).tolist()
            self.selected = (np.flatnonzero(self.draws < p) + self.first).tolist()
            self.p = p
        selected = self.selected
        return selected[bisect_left(selected, lo) : bisect_left(selected, hi)]
