"""Pure fault engine: records + a clock value in, emissions out. No Kafka here.

A route's faults form a pipeline in config order: a record passes each stage; a stage
whose selector picks the record applies its fault, the rest pass it on. Records a
holding stage releases later (``due``) continue through the stages after it. All state
is per source partition, so a partition can move between bridge processes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamchaos.faults import FAULTS, Fault, FaultConfig
from streamchaos.faults.base import FaultContext, InPlaceFault, Revalued
from streamchaos.record import Emission, Injection, Record
from streamchaos.selection import (
    RecordRandom,
    base_seed,
    key_uniform,
    splitmix,
    uniform,
    uniforms,
)

RNG_SALT = 0x5EED_5EED_5EED_5EED
DRAW_WINDOW = 4096  # offsets whose selection draws are computed at once, per partition


class Budget:
    """Token bucket for ``max_injections_per_second`` (the blast-radius limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Stage:
    """One configured fault on one route: selection plus one instance per partition."""

    def __init__(
        self, config: FaultConfig, topic: str, seed: int, ctx: FaultContext | None = None
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.label
        self.topic = topic
        self.seed = seed
        self.cls: type[Fault] = FAULTS[config.type]
        self.instances: dict[int, Fault] = {}
        rate = config.max_injections_per_second
        self.budget = Budget(rate) if rate is not None else None  # None: no limit
        self.intensity = 0.0
        self._bases: dict[int, int] = {}
        self._key_base = base_seed(seed, self.name, topic, "key")
        self._hits: set[int] | None = None  # of ``_hit_list``, made when first asked
        self._hit_list: list[int] = []
        self.seen = self.injected = 0  # records and ledgered injections in this episode
        # looked up once: a missing attribute on a pydantic model costs microseconds
        self.ramp_by_magnitude = getattr(config, "ramp_by", None) == "magnitude"
        self._hit_part, self._hit_lo, self._hit_hi = -1, 0, -1
        self._draws: dict[int, _Window] = {}  # per partition

    def instance(self, partition: int) -> Fault:
        inst = self.instances.get(partition)
        if inst is None:
            rng = RecordRandom(base_seed(self.seed, self.name, self.topic, partition, "rng"))
            inst = self.instances[partition] = self.cls(self.config, rng)
            if self.ctx is not None:
                inst.ctx = self.ctx  # type: ignore[attr-defined]
        return inst

    def base(self, partition: int) -> int:
        base = self._bases.get(partition)
        if base is None:
            base = self._bases[partition] = base_seed(self.seed, self.name, self.topic, partition)
        return base

    def rng_seed(self, record: Record) -> int:
        """Seed for the fault's draws on ``record``: replaying an offset repeats its draws."""
        return splitmix(self.base(record.partition) ^ RNG_SALT ^ record.offset)

    def rng_seeds(self, partition: int, records: list[Record]) -> list[int]:
        """``rng_seed`` of each of ``records`` (all from ``partition``)."""
        return self.offset_seeds(partition, [r.offset for r in records])

    def offset_seeds(self, partition: int, offsets: list[int]) -> list[int]:
        """``rng_seed`` of the records of ``partition`` at ``offsets``."""
        salt = self.base(partition) ^ RNG_SALT
        return [splitmix(salt ^ offset) for offset in offsets]

    def episode_stats(self) -> dict[str, float | int]:
        share = self.injected / self.seen if self.seen else 0.0
        return {
            "records": self.seen,
            "injected": self.injected,
            "realised_fraction": round(share, 6),
        }

    @property
    def probability(self) -> float:
        """fraction × intensity; with ``ramp_by: magnitude`` the fault scales its effect
        by the intensity instead, so every selected record changes a little more."""
        if self.intensity <= 0:
            return 0.0
        if self.ramp_by_magnitude:
            return self.config.fraction
        return self.config.fraction * self.intensity

    def draw(self, record: Record) -> float:
        if self.config.select == "key":
            return key_uniform(self._key_base, record.key)
        return uniform(self.base(record.partition), record.offset)

    def selects(self, record: Record, now: float, p: float | None = None) -> bool:
        """The deterministic draw, then the budget (which only ever lets fewer through).

        Offsets inside the range ``candidates`` last computed are looked up, not re-hashed;
        ``p``: the probability, when the caller already has it.
        """
        if p is None:
            p = self.probability
        if p <= 0:
            return False
        if self.config.select == "key":  # ``candidates`` (the cached hits) is record mode only
            return self.draw(record) < p and self._admits(now)
        return self.selects_offset(record.partition, record.offset, now, p)

    def selects_offset(self, partition: int, offset: int, now: float, p: float) -> bool:
        """``selects`` for a record-mode stage, by coordinates (``p`` > 0)."""
        if partition == self._hit_part and self._hit_lo <= offset < self._hit_hi:
            hits = self._hits
            if hits is None:
                hits = self._hits = set(self._hit_list)
            hit = offset in hits
        else:
            hit = uniform(self.base(partition), offset) < p
        return hit and self._admits(now)

    def admitted(self, count: int, now: float) -> list[bool]:
        """``selects`` of ``count`` records ``candidates`` just named: the budget's say."""
        if self.budget is None:
            return [True] * count
        return [self.budget.take(now) for _ in range(count)]

    def _admits(self, now: float) -> bool:
        """The budget (``max_injections_per_second``) lets one more through."""
        return self.budget is None or self.budget.take(now)

    def set_intensity(self, value: float) -> None:
        if value != self.intensity:
            self.intensity = value
            self._hit_hi = -1  # cached hits were drawn at the old probability

    def candidates(self, partition: int, first: int, count: int) -> list[int]:
        """Offsets in [first, first+count) this stage would select (record mode), ascending.

        The draws are kept for a window of offsets ahead, and, while the probability holds
        (a ramp changes it every tick), the offsets they select, so a consumed batch costs
        two bisections, or one comparison over its range, instead of hashing every offset
        again.
        """
        p = self.probability
        if p <= 0:
            return []
        window = self._draws.get(partition)
        if window is None or not window.first <= first <= first + count <= window.end:
            span = max(count, DRAW_WINDOW)
            window = self._draws[partition] = _Window(
                first, uniforms(self.base(partition), first, span)
            )
        hits = window.hits(p, first, first + count)
        self._hit_list, self._hits = hits, None
        self._hit_part, self._hit_lo, self._hit_hi = partition, first, first + count
        return hits

    def forget(self, partition: int) -> None:
        self.instances.pop(partition, None)
        self._draws.pop(partition, None)
        if self._hit_part == partition:
            self._hit_hi = -1


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


@dataclass
class EpisodeEvent:
    stage: Stage
    kind: str  # episode_start | episode_end
    at: float


class RouteEngine:
    """The fault pipeline of one route."""

    def __init__(
        self,
        topic: str,
        faults: Iterable[FaultConfig],
        seed: int,
        ctx: FaultContext | None = None,
    ) -> None:
        self.topic = topic
        self.stages = [Stage(cfg, topic, seed, ctx) for cfg in faults]
        self.needs_all = any(s.config.select == "key" or s.cls.observes for s in self.stages)
        # a lone one-in-one-out stage selecting by record: its value-only faults may take
        # the bridge's selected values as bytes (``revalue``)
        lone = self.stages[0] if len(self.stages) == 1 else None
        self.lone = lone if lone is not None and lone.cls.batched and not self.needs_all else None
        # ... or a fault that holds records and releases each once, unchanged: it may hold
        # them in the bridge's own form (``hold``)
        self.lone_hold = (
            lone if lone is not None and lone.cls.holds_items and not self.needs_all else None
        )
        self.paused = False
        # id(record) -> (the record, injections of earlier stages); the record is kept so
        # its id cannot be reused by another record while the entry lives
        self._carry: dict[int, tuple[Record, list[Injection]]] = {}

    # -- time ---------------------------------------------------------------------------

    def tick(self, now: float) -> tuple[list[EpisodeEvent], list[Emission]]:
        """Update intensities (episode starts/ends) and collect what holding stages release."""
        events = []
        for stage in self.stages:
            new = 0.0 if self.paused else stage.config.schedule.intensity(now)
            if (new > 0) != (stage.intensity > 0):
                if new > 0:
                    stage.seen = stage.injected = 0
                events.append(
                    EpisodeEvent(stage, "episode_start" if new > 0 else "episode_end", now)
                )
            stage.set_intensity(new)
        out: list[Emission] = []
        for index, stage in enumerate(self.stages):
            if not stage.cls.holds:
                continue
            for inst in stage.instances.values():
                released = inst.due(now)
                if released:
                    out.extend(self._continue(index + 1, self._attach(released), now))
        return events, out

    # -- records ------------------------------------------------------------------------

    def candidates(self, partition: int, first: int, count: int) -> list[int]:
        """Offsets in [first, first+count) some stage may select, ascending (record-mode
        stages only: with ``needs_all`` every record must go through the engine)."""
        found: list[int] = []
        merged = False
        for stage in self.stages:
            if stage.probability > 0 and stage.config.select == "record":
                hits = stage.candidates(partition, first, count)
                if found and hits:
                    found, merged = found + hits, True
                elif hits:
                    found = hits
        return sorted(set(found)) if merged else found

    def process(self, record: Record, now: float) -> list[Emission]:
        return self._continue(0, [Emission(record, record, [])], now)

    def process_many(self, records: list[Record], now: float) -> list[list[Emission]]:
        """``process`` of each record, as one call: ``result[i]`` is what ``records[i]``
        became. A stage whose fault takes batches (``Fault.batched``) gets every record it
        selects at once, per partition; each stage still sees its records in order, so the
        outputs equal those of ``process`` one by one."""
        outs = [[Emission(r, r, [])] for r in records]
        if self.paused:
            return outs
        for stage in self.stages:
            if stage.cls.batched:
                self._batched_stage(stage, outs, now)
            else:
                p = stage.probability
                for i, ems in enumerate(outs):
                    outs[i] = self._stage(stage, ems, now, p)
        return outs

    def revalue(
        self, partition: int, offsets: list[int], values: list[bytes | None], now: float
    ) -> list[Revalued] | None:
        """``process_many`` of these records of ``partition`` (the candidates, in order)
        in bytes, when the route's one stage is a value-only fault: result ``i`` is what
        the record at ``offsets[i]`` becomes (None: passes unchanged, selected or not).
        None when the stage's fault does not work that way; outputs equal ``process``'s."""
        stage = self.lone
        if stage is None:
            return None
        inst = stage.instance(partition)
        if not isinstance(inst, InPlaceFault) or not inst.value_only:
            return None
        out: list[Revalued] = [None] * len(offsets)
        p = stage.probability
        if self.paused or p <= 0:
            return out
        selects = stage.selects_offset
        picked = [i for i, off in enumerate(offsets) if selects(partition, off, now, p)]
        if not picked:
            return out
        if len(picked) < len(offsets):
            offsets, values = [offsets[i] for i in picked], [values[i] for i in picked]
        topic = self.topic
        seeds = stage.offset_seeds(partition, offsets) if inst.uses_rng else [0] * len(offsets)
        results = inst.revalue(values, seeds, now, lambda i: f"{topic}[{partition}]@{offsets[i]}")
        for i, res in zip(picked, results, strict=True):
            out[i] = res
        return out

    def hold(
        self, partition: int, offsets: list[int], items: list[Any], now: float
    ) -> tuple[list[bool], list[tuple[int, list[Any]]]]:
        """``process_many`` of these records of ``partition`` in the caller's own form, when
        the route's one stage holds records unchanged (``lone_hold``). They must be the
        stage's ``candidates``, in order: their draws are not made again, only the budget
        is asked. Returns whether the stage took ``items[i]`` (the rest pass unchanged),
        and (i, ``Held`` items the size limit released early on taking ``items[i]``). What
        ``due`` and ``drain`` release later are ``Held`` items; outputs equal ``process``'s."""
        stage = self.lone_hold
        assert stage is not None
        if self.paused or stage.probability <= 0:
            return [False] * len(offsets), []
        taken = stage.admitted(len(offsets), now)
        if not all(taken):
            items = [item for item, t in zip(items, taken, strict=True) if t]
            offsets = [off for off, t in zip(offsets, taken, strict=True) if t]
            where = [i for i, t in enumerate(taken) if t]
        if not offsets:
            return taken, []
        inst = stage.instance(partition)
        seeds = stage.offset_seeds(partition, offsets) if inst.uses_rng else None
        early = inst.hold_many(offsets, items, seeds, now)  # type: ignore[attr-defined]
        if early and len(offsets) < len(taken):
            early = [(where[i], held) for i, held in early]
        return taken, early

    def _continue(self, start: int, ems: list[Emission], now: float) -> list[Emission]:
        for stage in self.stages[start:]:
            ems = self._stage(stage, ems, now)
        return ems

    def _stage(
        self, stage: Stage, ems: list[Emission], now: float, p: float | None = None
    ) -> list[Emission]:
        """One stage over some emissions; ``p``: its probability, if the caller has it."""
        if p is None:
            p = stage.probability
        nxt: list[Emission] = []
        for em in ems:
            rec = em.record
            if rec is None or self.paused:
                nxt.append(em)
                continue
            if stage.selects(rec, now, p):
                inst = stage.instance(rec.partition)
                if em.injections:  # a fresh object: one carry slot per emission
                    rec = rec.evolve()
                    self._carry[id(rec)] = (rec, em.injections)
                if inst.uses_rng:  # draws are a function of the record
                    inst.rng.seed(stage.rng_seed(rec))
                out = inst.apply(rec, now)
                nxt.extend(self._attach(out) if self._carry else out)
            else:
                if stage.cls.observes:
                    stage.instance(rec.partition).observe(rec, now)
                nxt.append(em)
        return nxt

    def _batched_stage(self, stage: Stage, outs: list[list[Emission]], now: float) -> None:
        """A one-in, one-out stage over all the records it selects, in place."""
        picked: dict[int, list[tuple[list[Emission], int, Emission]]] = {}
        p = stage.probability
        for ems in outs:
            for j, em in enumerate(ems):
                rec = em.record
                if rec is None:
                    continue
                if stage.selects(rec, now, p):
                    picked.setdefault(rec.partition, []).append((ems, j, em))
                elif stage.cls.observes:
                    stage.instance(rec.partition).observe(rec, now)
        for part, items in picked.items():
            recs = [em.record for _, _, em in items if em.record is not None]
            seeds = stage.rng_seeds(part, recs)
            results = stage.instance(part).apply_many(recs, seeds, now)
            for (ems, j, em), res in zip(items, results, strict=True):
                if em.injections:  # injections of earlier stages stay with the record
                    res.injections[:0] = em.injections
                ems[j] = res

    def _attach(self, ems: list[Emission]) -> list[Emission]:
        """Give injections of earlier stages back to the emission that carries the record."""
        if self._carry:
            for em in ems:
                carried = self._carry.pop(id(em.source), None)
                if carried is not None and carried[0] is em.source:
                    em.injections[:0] = carried[1]
        return ems

    # -- holding ------------------------------------------------------------------------

    def consumed(self, count: int) -> None:
        """``count`` records of the route arrived: the denominator of realised fractions."""
        for stage in self.stages:
            if stage.intensity > 0:
                stage.seen += count

    def oldest_held(self, partition: int) -> int | None:
        oldest = None
        for stage in self.stages:
            inst = stage.instances.get(partition)
            if inst is not None and stage.cls.holds:
                off = inst.oldest_held()
                if off is not None and (oldest is None or off < oldest):
                    oldest = off
        return oldest

    def held(self, stage: Stage) -> int:
        return sum(inst.held() for inst in stage.instances.values())

    def drain(self, partitions: Iterable[int] | None = None) -> list[Emission]:
        """Release everything held for these partitions (all when None), in stage order."""
        out: list[Emission] = []
        for stage in self.stages:
            parts = list(stage.instances) if partitions is None else list(partitions)
            for part in parts:
                inst = stage.instances.get(part)
                if inst is not None:
                    out.extend(self._attach(inst.drain()))
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        parts = list(partitions)
        for key, (rec, _) in list(self._carry.items()):
            if rec.partition in parts:
                del self._carry[key]
        for stage in self.stages:
            for part in parts:
                stage.forget(part)
