"""Commit only what landed: delivery reports → finished offsets → the commit sequence.

Outputs are produced in groups (``Batch``): one per consumed batch, one per release of held
records; in a batch, the produce calls to one shadow partition form a ``Run``. The producer
is idempotent, so a partition's records land in the order produced; a run's first and last
record get a delivery report (and any record whose ledger line needs its shadow offset).
When their shadow offsets are as far apart as their places in the run, every record between
landed too, with nothing else in between; the others cost no Python call. A run whose
offsets do not match (a record lost, or another producer on the shadow partition) fails.

The commit point of a partition is the lowest offset that is not finished: the lowest
offset of any incomplete batch touching the partition, a fault still holds in memory, or
of any batch that failed (never committed, re-read on restart); otherwise one past the
highest offset consumed. ``transactions.py`` commits under exactly-once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from streamchaos.record import Item

log = logging.getLogger(__name__)

TP = tuple[str, int]
Report = Callable[[Any, Any], None]


class Batch:
    """Outputs produced together; complete once sealed and every report it expects came."""

    __slots__ = ("failed", "landed", "lows", "remaining", "sealed", "tracker")

    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker
        self.lows: dict[TP, int] = {}
        self.remaining = 0  # delivery reports (shadow runs, ledger-topic lines) to come
        self.sealed = False
        self.landed: dict[str, int] = {}  # shadow records proven landed, by route
        self.failed: dict[str, int] = {}  # shadow records or ledger lines that failed

    def cover(self, tp: TP, offset: int) -> None:
        """This batch finishes ``offset`` of ``tp`` (its outputs, if any, follow)."""
        low = self.lows.get(tp)
        if low is None or offset < low:
            self.lows[tp] = offset

    def expect(self, count: int = 1) -> None:
        self.remaining += count

    def reported(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and self.sealed:
            self.tracker.complete(self)

    def fail(self, route: str, count: int) -> None:
        self.failed[route] = self.failed.get(route, 0) + max(count, 1)

    def on_line_delivery(self, route: str, err: Any, msg: Any) -> None:
        """Delivery report of a ledger-topic line written for one of ``route``'s outputs."""
        if err is not None:
            self.fail(route, 1)
        self.reported()

    def seal(self) -> None:
        """No more outputs will be added; completes at once when nothing is in flight."""
        self.sealed = True
        if self.remaining == 0:
            self.tracker.complete(self)


class Run:
    """The produce calls of one batch to one shadow partition, in order. ``each``: the order
    proves nothing there (the key chooses shadow partitions), so every record is reported."""

    __slots__ = (
        "arrivals", "at_ms", "base", "batch", "closed", "count", "each", "errors", "on_item",
        "on_landed", "pending", "route", "segments", "shadow", "skewed", "source",
    )  # fmt: skip

    def __init__(
        self,
        batch: Batch,
        route: str,
        source: TP,
        shadow: TP,
        count: int,
        at_ms: int,
        on_item: Callable[[Run, Item, Any, Any], None],
        on_landed: Callable[[Run], None] | None,
        each: bool = False,
    ) -> None:
        self.batch, self.route, self.source, self.shadow = batch, route, source, shadow
        self.count, self.at_ms, self.each = count, at_ms, each
        self.on_item, self.on_landed = on_item, on_landed
        self.pending = self.errors = 0
        self.closed = False
        self.base: int | None = None  # shadow offset minus position, the same for all
        self.arrivals: list[tuple[int, int]] = []  # (position, shadow offset) reported
        self.skewed = False
        self.segments: list[list[int]] = []  # source [offset, length] in produce order

    def report(self, position: int, item: Item | None = None) -> Report:
        """The delivery callback of the record at ``position`` (its item, when its
        injections are ledgered once it lands)."""
        self.pending += 1
        self.batch.expect()
        return partial(self._delivered, position, item)

    def refused(self) -> None:
        """The client refused a record of the run outright (too large…): it never lands."""
        self.errors += 1

    def close(self) -> None:
        """Every produce call of the run was made: it finishes with its last report."""
        self.closed = True
        if self.pending == 0:
            self._finish()

    def needs_report(self, position: int) -> bool:
        return self.each or position == 0 or position == self.count - 1

    def trace(self, offset: int, length: int) -> None:
        """``length`` source records from ``offset`` on are the next produce calls."""
        seg = self.segments[-1] if self.segments else None
        if seg is not None and seg[0] + seg[1] == offset:
            seg[1] += length
        else:
            self.segments.append([offset, length])

    def _delivered(self, position: int, item: Item | None, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors += 1
        elif self.each:
            self.arrivals.append((position, -1))
        else:
            self.arrivals.append((position, msg.offset()))
            base = msg.offset() - position
            if self.base is None:
                self.base = base
            elif base != self.base:
                self.skewed = True
        if item is not None:
            self.on_item(self, item, err, msg)
        self.pending -= 1
        if self.pending == 0 and self.closed:
            self._finish()
        self.batch.reported()

    def _finish(self) -> None:
        if self.errors or self.skewed:
            unproven = self.count - self._proven()
            self.batch.fail(self.route, unproven)
            log.error(
                "%s[%d]: %d of %d records to %s[%d] not proven landed (%s); their source "
                "offsets stay uncommitted",
                *self.source,
                unproven,
                self.count,
                *self.shadow,
                "delivery failed" if self.errors else "shadow offsets not consecutive",
            )
            return
        self.batch.landed[self.route] = self.batch.landed.get(self.route, 0) + self.count
        if self.on_landed is not None and not self.each:  # ``each``: the headers say it
            self.on_landed(self)

    def _proven(self) -> int:
        """How many records of a failed run landed: each one reported, or (no other producer
        on the partition) those between the first and last reported, less the gap."""
        if self.each or not self.arrivals:
            return len(self.arrivals)
        (first, low), (last, high) = min(self.arrivals), max(self.arrivals)
        if high - low > last - first:  # records of another producer in between: unknown
            return len(self.arrivals)
        return (last - first + 1) - ((last - first) - (high - low))


class OffsetTracker:
    """Per-partition bookkeeping of consumed, in-flight, held and failed offsets."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}
        self._pending: list[Batch] = []
        self.held_floor: Callable[[TP], int | None] = lambda tp: None
        self._failed: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self.failed_outputs = 0
        self.on_complete: Callable[[Batch], None] = lambda batch: None

    def consumed(self, tp: TP, offset: int) -> None:
        if offset + 1 > self._next.get(tp, -1):
            self._next[tp] = offset + 1

    def new_batch(self) -> Batch:
        batch = Batch(self)
        self._pending.append(batch)
        return batch

    def complete(self, batch: Batch) -> None:
        self._pending.remove(batch)
        if batch.failed:
            self.failed_outputs += sum(batch.failed.values())
            for tp, low in batch.lows.items():
                self._failed[tp] = min(low, self._failed.get(tp, low))
        self.on_complete(batch)

    def commit_point(self, tp: TP) -> int | None:
        """The offset to commit for ``tp`` (next to read), or None if nothing consumed."""
        point = self._next.get(tp)
        if point is None:
            return None
        lows = [b.lows[tp] for b in self._pending if tp in b.lows]
        for floor in (*lows, self.held_floor(tp), self._failed.get(tp)):
            if floor is not None and floor < point:
                point = floor
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

    def reads(self) -> dict[TP, int]:
        return dict(self._next)  # the next offset to read, per partition read

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop state of partitions this process no longer owns."""
        for tp in tps:
            self._next.pop(tp, None)
            self._failed.pop(tp, None)
            self._committed.pop(tp, None)
            for batch in self._pending:
                batch.lows.pop(tp, None)


class Checkpoint:
    """The commit sequence, in one place. ``commit`` takes these steps in order:

    1. land: serve the delivery reports that came (``land``: flush the producer first —
       revocation and shutdown, where everything produced must be settled);
    2. flush the ledger file, so no committed offset's ground truth can be lost to the
       process crashing between the two (an OS crash may still lose what it had not synced);
    3. work out each partition's commit point, behind in-flight, held and failed records;
    4. commit them synchronously;
    5. check each partition's result: one the broker refused is committed again next time.
    """

    def __init__(
        self,
        tracker: OffsetTracker,
        consumer: Any,
        serve: Callable[[], None],
        flush: Callable[[], int],
        ledger_flush: Callable[[], None],
    ) -> None:
        self.tracker, self.consumer = tracker, consumer
        self._serve, self._flush, self._ledger_flush = serve, flush, ledger_flush

    def lost(self, tps: list[TP]) -> None:
        """Partitions taken away unrevoked: at-least-once leaves them to the new owner."""

    def commit(self, tps: Iterable[TP] | None = None, land: bool = False) -> dict[TP, int]:
        """Returns the commit points the broker took."""
        (self._flush if land else self._serve)()
        self._ledger_flush()
        points = self.tracker.to_commit(tps)
        if not points:
            return {}
        offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
        try:
            results = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed, will retry: %s", exc.args[0])
            return {}
        for tp in [tp for tp in results or [] if tp.error is not None]:
            log.warning("commit of %s[%d] refused, retried: %s", tp.topic, tp.partition, tp.error)
            points.pop((tp.topic, tp.partition), None)
        self.tracker.committed(points)
        return points
