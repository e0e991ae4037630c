"""Commit only what landed: per-partition commit points behind everything unfinished.

A source offset is *finished* when every output it caused was acknowledged by the broker
(or it caused none: dropped on purpose), and so were the lines its injections wrote to the
ledger topic, when there is one. Outputs are produced in groups (``Batch``): one per
consumed batch, one per release of held records. The broker acknowledges each output
through a delivery report; a batch is complete when all of its outputs are acknowledged.
A bridge that keeps no ledger needs no shadow offsets, so it asks for reports of failures
only; its batches complete when a flush finds nothing in flight (``all_landed``), the way
Kafka Streams flushes its producer before it commits.

The commit point of a partition is the lowest offset that is not finished:
  1. the lowest offset of any incomplete batch touching the partition,
  2. the lowest offset a fault still holds in memory,
  3. the lowest offset whose delivery finally failed (never passed, so never committed),
  4. otherwise one past the highest offset consumed.
Tracking per batch instead of per record keeps the hot loop to one counter decrement per
delivery report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TP = tuple[str, int]


class Batch:
    """Outputs produced together; ``on_delivery`` is handed to every ``produce`` call."""

    __slots__ = (
        "_tracker",
        "failures",
        "line_failures",
        "lows",
        "outputs_by_route",
        "remaining",
        "sealed",
    )

    def __init__(self, tracker: OffsetTracker) -> None:
        self._tracker = tracker
        self.lows: dict[TP, int] = {}
        self.remaining = 0
        self.outputs_by_route: dict[str, int] = {}
        self.sealed = False
        self.failures: list[tuple[Any, Any]] = []
        self.line_failures: dict[str, int] = {}  # ledger-topic lines that failed, by route

    def cover(self, tp: TP, offset: int) -> None:
        """This batch finishes ``offset`` of ``tp`` (its outputs, if any, follow)."""
        low = self.lows.get(tp)
        if low is None or offset < low:
            self.lows[tp] = offset

    def add_outputs(self, route: str, count: int) -> None:
        """``count`` more outputs in flight (the hot loop adds its fast outputs in bulk)."""
        self.remaining += count
        self.outputs_by_route[route] = self.outputs_by_route.get(route, 0) + count

    def add_pending(self, count: int) -> None:
        """``count`` deliveries that are not shadow records (the ledger lines of its
        injections, bound for the ledger topic): the batch completes after them too."""
        self.remaining += count

    def on_line_delivery(self, route: str, err: Any, msg: Any) -> None:
        """``on_delivery`` of a ledger-topic line written for one of ``route``'s injections."""
        if err is not None:
            self.line_failures[route] = self.line_failures.get(route, 0) + 1
        self.on_delivery(err, msg)

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures.append((err, msg))
        self.remaining -= 1
        if self.remaining == 0 and self.sealed:
            self._tracker._complete(self)

    def seal(self) -> None:
        """No more outputs will be added; completes at once when nothing is in flight."""
        self.sealed = True
        if self.remaining == 0:
            self._tracker._complete(self)


class OffsetTracker:
    """Per-partition bookkeeping of consumed, in-flight, held and failed offsets."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}
        self._pending: list[Batch] = []
        self.held_floor: Callable[[TP], int | None] = _no_floor
        self._failed: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self.failed_outputs = 0
        self.on_complete: Callable[[Batch], None] = _nothing

    def consumed(self, tp: TP, offset: int) -> None:
        if offset + 1 > self._next.get(tp, -1):
            self._next[tp] = offset + 1

    def new_batch(self) -> Batch:
        batch = Batch(self)
        self._pending.append(batch)
        return batch

    def _complete(self, batch: Batch) -> None:
        self._pending.remove(batch)
        if batch.failures:
            self.failed_outputs += len(batch.failures)
            for tp, low in batch.lows.items():
                self._failed[tp] = min(low, self._failed.get(tp, low))
        self.on_complete(batch)

    def all_landed(self) -> None:
        """The producer has nothing in flight (a flush emptied it): every sealed batch is
        complete, its failures among the delivery reports served during that flush. How
        batches complete when the bridge asks the client for failure reports only."""
        for batch in [b for b in self._pending if b.sealed]:
            self._complete(batch)

    def commit_point(self, tp: TP) -> int | None:
        """The offset to commit for ``tp`` (next to read), or None if nothing consumed."""
        point = self._next.get(tp)
        if point is None:
            return None
        for batch in self._pending:
            low = batch.lows.get(tp)
            if low is not None and low < point:
                point = low
        held = self.held_floor(tp)
        if held is not None and held < point:
            point = held
        failed = self._failed.get(tp)
        if failed is not None:
            point = min(point, failed)
        return point

    def to_commit(self, tps: Iterable[TP] | None = None) -> dict[TP, int]:
        """Commit points that advanced since the last ``committed`` call."""
        out = {}
        for tp in list(self._next) if tps is None else tps:
            point = self.commit_point(tp)
            if point is not None and point > self._committed.get(tp, -1):
                out[tp] = point
        return out

    def committed(self, points: dict[TP, int]) -> None:
        for tp, point in points.items():
            self._committed[tp] = max(point, self._committed.get(tp, -1))

    def lag(self, tp: TP) -> int:
        """Consumed records not yet covered by a commit."""
        nxt = self._next.get(tp)
        if nxt is None:
            return 0
        return max(0, nxt - max(self._committed.get(tp, 0), 0))

    def partitions(self) -> list[TP]:
        return list(self._next)

    def in_flight(self) -> int:
        return sum(b.remaining for b in self._pending)

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop state of partitions this process no longer owns."""
        for tp in tps:
            self._next.pop(tp, None)
            self._failed.pop(tp, None)
            self._committed.pop(tp, None)
            for batch in self._pending:
                batch.lows.pop(tp, None)


def _no_floor(tp: TP) -> int | None:
    return None


def _nothing(batch: Batch) -> None:
    return None
