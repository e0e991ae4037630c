"""Where holding faults keep records: ordered by release time, with a hard size limit.

At the limit the earliest-due entry is released early (the fault marks it so), never
dropped. Each entry keeps its source offset: the partition's commit point stays behind the
lowest one held.
"""

from __future__ import annotations

import heapq
import itertools
from abc import abstractmethod
from collections import deque
from collections.abc import Collection
from typing import Generic, TypeVar

from pydantic import Field

from streamchaos.faults.config import FaultConfig

T = TypeVar("T")


class HoldingConfig(FaultConfig):
    """Settings of a fault that holds records: how many before it releases early."""

    max_held: int = Field(
        default=100_000, ge=1, description="held records before early release (never dropped)"
    )


class LongHoldingConfig(HoldingConfig):
    """A fault whose holds beyond the bridge's ``hold_horizon`` wait in the long-hold store
    (``delay``, ``label_delay``): a Kafka topic, not memory."""

    @abstractmethod
    def longest(self) -> float | None:
        """The longest it holds a record, in seconds (None: no bound)."""

    @abstractmethod
    def shortest(self) -> float:
        """The shortest it holds a record it picked, in seconds."""


class HoldBuffer(Generic[T]):
    """Entries ordered by release time. ``ordered``: entries come due in the order they are
    pushed (a fixed delay on a clock that never goes back), so a queue serves them; one
    pushed out of order turns the queue into a heap."""

    def __init__(self, limit: int, ordered: bool = False) -> None:
        self.limit = limit
        self._queue: deque[tuple[float, int, int, T]] | None = deque() if ordered else None
        self._heap: list[tuple[float, int, int, T]] = []
        self._seq = itertools.count()

    def push(self, release_at: float, offset: int, entry: T) -> list[T]:
        """Hold ``entry`` (of source ``offset``); returns what the size limit released."""
        row = (release_at, next(self._seq), offset, entry)
        queue = self._queue
        if queue is not None and (not queue or queue[-1][0] <= release_at):
            queue.append(row)
            if len(queue) <= self.limit:
                return []
            return [queue.popleft()[3]]
        if queue is not None:  # out of order: a heap from now on
            self._heap, self._queue = list(queue), None  # a sorted list is a heap
        heapq.heappush(self._heap, row)
        early = []
        while len(self._heap) > self.limit:
            early.append(heapq.heappop(self._heap)[3])
        return early

    def pop_due(self, now: float) -> list[T]:
        out = []
        queue = self._queue
        if queue is not None:
            while queue and queue[0][0] <= now:
                out.append(queue.popleft()[3])
            return out
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[3])
        return out

    def drain(self) -> list[T]:
        rows = self._queue if self._queue is not None else sorted(self._heap)
        out = [row[3] for row in rows]
        self._heap = []
        if self._queue is not None:
            self._queue.clear()
        return out

    def _rows(self) -> Collection[tuple[float, int, int, T]]:
        return self._queue if self._queue is not None else self._heap

    def __len__(self) -> int:
        return len(self._rows())

    def oldest_offset(self) -> int | None:
        return min((row[2] for row in self._rows()), default=None)

    def offsets(self) -> list[int]:
        return [row[2] for row in self._rows()]
