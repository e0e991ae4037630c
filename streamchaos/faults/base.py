"""The fault protocol: a tiny required core, optional capabilities.

Required: ``apply(record, now)`` → emissions for one *selected* record. Faults that hold
records also implement ``due(now)`` (what to release now) and ``drain()`` (release
everything: shutdown, revocation, pause). Faults that need to see every record (a ring
buffer of recent records, a last value) set ``observes = True`` and get ``observe``.
The bridge owns the clock and passes ``now`` (seconds since the experiment's start), so
tests drive faults with a fake clock. One instance per (fault, source partition).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from streamchaos.codec.registry import ParsedSchema
from streamchaos.errors import FieldError
from streamchaos.record import Emission, Injection, Record
from streamchaos.schedule import Schedule


class FaultConfig(BaseModel):
    """Fields common to every fault; each type adds its own, flat, beside these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = Field(default=None, description="unique per route; default: the type")
    fraction: float = Field(default=0.1, ge=0, le=1, description="share of records selected")
    select: Literal["record", "key"] = Field(
        default="record", description="record: each record drawn; key: a cohort of keys"
    )
    schedule: Schedule = Field(default_factory=Schedule)
    max_injections_per_second: float | None = Field(
        default=None, gt=0, description="blast-radius budget; selections beyond it pass"
    )

    @property
    def label(self) -> str:
        return self.name or self.type


class Fault(ABC):
    """Base class; subclasses set ``Config`` and implement ``apply`` (and maybe more)."""

    Config: ClassVar[type[FaultConfig]]
    purpose: ClassVar[str] = ""
    holds: ClassVar[bool] = False
    observes: ClassVar[bool] = False
    batched: ClassVar[bool] = False  # apply_many: one emission per record, all at once
    # hold_many: holds items in the caller's own form; each comes back once, unchanged
    holds_items: ClassVar[bool] = False
    uses_rng: bool = True  # False: ``apply`` draws nothing, so the engine skips seeding ``rng``

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self._label = config.label  # a property of the model: looked up once
        self.reset()

    def reset(self) -> None:
        """Rebuild mutable state (a partition's state starts empty on assignment)."""
        return None  # optional hook: stateless faults have nothing to rebuild

    @abstractmethod
    def apply(self, record: Record, now: float) -> list[Emission]:
        """Emissions for one selected record (none while it is held)."""

    def apply_many(self, records: list[Record], seeds: list[int], now: float) -> list[Emission]:
        """Exactly one emission per record (faults with ``batched``); ``seeds[i]`` is what
        ``rng`` is seeded with for ``records[i]``. By default, one ``apply`` at a time."""
        out = []
        for record, seed in zip(records, seeds, strict=True):
            self.rng.seed(seed)
            out.extend(self.apply(record, now))
        return out

    def observe(self, record: Record, now: float) -> None:
        """See a record this fault did not select (only when ``observes``)."""
        return None  # optional hook

    def due(self, now: float) -> list[Emission]:
        return []

    def drain(self) -> list[Emission]:
        return []

    def held(self) -> int:
        return 0

    def oldest_held(self) -> int | None:
        """Lowest source offset held: the partition's commit point stays behind it."""
        return None

    def injection(self, effect: str, **detail: Any) -> Injection:
        return Injection(self._label, self.config.type, effect, detail)


class HoldBuffer:
    """Held items ordered by release time, each kept with its source offset (the
    partition's commit point stays behind the lowest), with a hard size limit.

    At the limit the earliest-due item is released early (the caller marks it so), never
    dropped. Items are emissions, or what a fault's ``hold_many`` caller handed in.
    ``ordered``: items come due in the order they are pushed (a fixed delay on a clock
    that never goes back), so a queue serves them; one pushed out of order turns the queue
    into a heap.
    """

    def __init__(self, limit: int, ordered: bool = False) -> None:
        self.limit = limit
        self._queue: deque[tuple[float, int, int, Any]] | None = deque() if ordered else None
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()

    def push(self, release_at: float, offset: int, item: Any) -> list[Any]:
        entry = (release_at, next(self._seq), offset, item)
        queue = self._queue
        if queue is not None and (not queue or queue[-1][0] <= release_at):
            queue.append(entry)
            if len(queue) <= self.limit:
                return []
            return [queue.popleft()[3]]
        if queue is not None:  # out of order: a heap from now on
            self._heap, self._queue = list(queue), None  # a sorted list is a heap
        heapq.heappush(self._heap, entry)
        early = []
        while len(self._heap) > self.limit:
            early.append(heapq.heappop(self._heap)[3])
        return early

    def pop_due(self, now: float) -> list[Any]:
        out = []
        queue = self._queue
        if queue is not None:
            while queue and queue[0][0] <= now:
                out.append(queue.popleft()[3])
            return out
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[3])
        return out

    def drain(self) -> list[Any]:
        entries = self._queue if self._queue is not None else sorted(self._heap)
        out = [entry[3] for entry in entries]
        self._heap = []
        if self._queue is not None:
            self._queue.clear()
        return out

    def _entries(self) -> Collection[tuple[float, int, int, Any]]:
        return self._queue if self._queue is not None else self._heap

    def __len__(self) -> int:
        return len(self._entries())

    def oldest_offset(self) -> int | None:
        return min((entry[2] for entry in self._entries()), default=None)


class Held(NamedTuple):
    """A record held in the form its caller handed in (``hold_many``; the bridge hands in
    its produce call's arguments, with no ``Record`` or ``Emission`` made for it), at
    source ``offset``; ``seconds`` held, and whether the size limit released it
    ``early``."""

    offset: int
    item: Any
    seconds: float
    early: bool = False


class HoldingConfig(FaultConfig):
    """Settings of a fault that holds records: how many before it releases early."""

    max_held: int = Field(
        default=100_000, ge=1, description="held records before early release (never dropped)"
    )


class BufferedFault(Fault):
    """A fault whose held records sit in a ``HoldBuffer`` (release by time, size limit)."""

    holds = True
    config: HoldingConfig

    releases_in_order = False  # held records come due in the order they were taken

    def reset(self) -> None:
        self._held = HoldBuffer(self.config.max_held, ordered=self.releases_in_order)

    def _hold(self, release_at: float, em: Emission) -> list[Emission]:
        """Hold ``em`` until ``release_at``; returns what the size limit released early."""
        early: list[Emission] = self._held.push(release_at, em.source.offset, em)
        for out in early:
            for inj in out.injections:
                inj.detail["released_early"] = True
        return early

    def due(self, now: float) -> list[Emission]:
        return self._held.pop_due(now)

    def drain(self) -> list[Emission]:
        return self._held.drain()

    def held(self) -> int:
        return len(self._held)

    def oldest_held(self) -> int | None:
        return self._held.oldest_offset()


class FaultContext:
    """What a record-level fault may use: the route's codec and where to report trouble.

    The codec may reach a schema registry; everything else stays pure.
    """

    def __init__(self, codec: Any, source: str, shadow: str) -> None:
        self.codec = codec
        self.source = source
        self.shadow = shadow
        self.undecodable: Any = lambda reason: None
        self.error: Any = lambda fault, reason, message: None


Revalued = tuple[bytes, Any] | None  # (new value, note for ``describe``); None: unchanged


class ValueFault(Fault):
    """Decode the selected record, change its value, encode it; bad input passes unchanged."""

    ctx: FaultContext
    batched = True  # one emission per record, always (``guarded``)

    def apply(self, record: Record, now: float) -> list[Emission]:
        return self.guarded(record, lambda: self._modify(record, now))

    def _modify(self, record: Record, now: float) -> list[Emission]:
        out = self.change(record, now)
        if out is None:
            return [Emission(record, record, [])]
        changed, detail = out
        return [Emission(changed, record, [self.injection("modify", **detail)])]

    def register_variant(
        self, raw: Any, framed: bool, subject: str | None
    ) -> tuple[ParsedSchema, int | None]:
        """A mutated writer schema, parsed, and registered when records come framed from a
        registry: under ``subject``, by default the shadow's own (never a source's)."""
        registry = self.ctx.codec.registry
        schema_id = None
        if registry is not None and framed:
            schema_id = registry.register(subject or f"{self.ctx.shadow}-value", raw)
        return ParsedSchema.of(raw), schema_id

    def guarded(self, record: Record, act: Callable[[], list[Emission]]) -> list[Emission]:
        """Run ``act``; a record it cannot decode or change passes unchanged, reported."""
        try:
            return act()
        except Exception as exc:  # bad input never stops the bridge (DESIGN invariant 5)
            self.report(record.where, exc)
        return [Emission(record, record, [])]

    def report(self, where: str, exc: Exception) -> None:
        """Count (and log once) why the record at ``where`` passes unchanged."""
        from streamchaos.codec.wire import Undecodable

        if isinstance(exc, Undecodable):
            self.ctx.undecodable(exc.reason)
        elif isinstance(exc, FieldError):
            self.ctx.error(self.config.label, exc.reason, f"{where}: {exc}")
        else:
            self.ctx.error(self.config.label, "unexpected", f"{where}: {exc!r}")

    @abstractmethod
    def change(self, record: Record, now: float) -> tuple[Record, dict[str, Any]] | None:
        """The changed record and the ledger detail, or None to leave it alone."""


class InPlaceFault(ValueFault):
    """A value fault that can work on bytes: when ``value_only`` (every change is to the
    value alone), the bridge hands it the selected values of a consumed batch and produces
    the results in the consumed records' place, without a ``Record`` or an ``Emission``
    per record (the cost of a selected record is most of a fault's overhead)."""

    value_only = True

    def apply_many(self, records: list[Record], seeds: list[int], now: float) -> list[Emission]:
        if not self.value_only:
            return super().apply_many(records, seeds, now)
        values = [r.value for r in records]
        results = self.revalue(values, seeds, now, lambda i: records[i].where)
        return [self.emission(r, res) for r, res in zip(records, results, strict=True)]

    @abstractmethod
    def revalue(
        self, values: list[bytes | None], seeds: list[int], now: float, where: Callable[[int], str]
    ) -> list[Revalued]:
        """The new value of each selected value and a note of what changed, in order
        (None: passes unchanged); ``seeds[i]`` seeds the draws for ``values[i]``,
        ``where(i)`` names its record. Bad input is reported and passes unchanged."""

    @abstractmethod
    def describe(self, note: Any) -> dict[str, Any]:
        """The ledger detail of a change ``revalue`` noted: the bridge's in-place path
        calls it only when a ledger line is written."""

    def emission(self, record: Record, result: Revalued) -> Emission:
        """What ``result`` of ``revalue`` means for ``record``."""
        if result is None:
            return Emission(record, record, [])
        detail = self.describe(result[1])
        return Emission(record.with_value(result[0]), record, [self.injection("modify", **detail)])


class RunningStats:
    """Welford mean and standard deviation, optionally frozen after ``limit`` values."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.n = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, x: float) -> None:
        if self.limit is not None and self.n >= self.limit:
            return
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (x - self.mean)

    @property
    def sigma(self) -> float:
        return math.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else 0.0
