"""The hot path: a consumed batch → each route's pipeline → produce calls by index.

A consumed batch is cut into runs of consecutive offsets of one partition. For each run
the route's pipeline says, by batch index, what replaces the records its faults touched;
every other record goes from the consumed message to its produce call as it came. The
produce calls of a run to its shadow partition are one ``checkpoint.Run``: only its first
and last record, and records whose ledger line needs a shadow offset, get a delivery
report. Held records come back from the pipeline as items and are produced the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import pairwise
from operator import ne
from typing import Any

import numpy as np
from confluent_kafka import KafkaException, Message

from streamchaos.bridge.checkpoint import TP, Batch, OffsetTracker, Run
from streamchaos.bridge.journal import Journal
from streamchaos.config import LINEAGE_HEADER, Config, Route
from streamchaos.engine import Pipeline
from streamchaos.faults.base import FaultContext
from streamchaos.kafkatools import produce_with_room
from streamchaos.record import Item

log = logging.getLogger(__name__)


class RouteState:
    """Per-route constants and counters the hot loop needs."""

    __slots__ = (
        "consumed",
        "failed",
        "name",
        "pipeline",
        "produced",
        "shadow",
        "shadow_partitions",
    )

    def __init__(
        self, route: Route, shadow_partitions: int, seed: int, ctx: FaultContext | None = None
    ) -> None:
        self.name = route.source
        self.shadow = route.shadow
        self.shadow_partitions = shadow_partitions
        self.pipeline = Pipeline(route.source, route.faults, seed, ctx) if route.faults else None
        self.consumed = self.produced = self.failed = 0


class Forwarder:
    def __init__(
        self,
        cfg: Config,
        producer: Any,
        tracker: OffsetTracker,
        journal: Journal,
        routes: dict[str, RouteState],
    ) -> None:
        self.producer = producer
        self.tracker = tracker
        self.journal = journal
        self.routes = routes
        self.lineage = cfg.bridge.lineage_header  # None: lineage goes to the ledger
        self.pipelines = [(s, s.pipeline) for s in routes.values() if s.pipeline is not None]
        self.only_topic = next(iter(routes)) if len(routes) == 1 else ""
        self.on_consume_error: Callable[[Any], None] = lambda err: None

    # -- consumed batches ---------------------------------------------------------------

    def forward(self, msgs: list[Any], now: float) -> None:
        """Produce each consumed record to its shadow; one ``Batch`` tracks what landed."""
        if any(map(_ERROR, msgs)):  # rare: the client's events among the records
            msgs = self._records_only(msgs)
        batch = self.tracker.new_batch()
        for start, end in runs(msgs, self.only_topic):
            self._run(batch, msgs, start, end, now)
        batch.seal()

    def _records_only(self, msgs: list[Any]) -> list[Any]:
        """``msgs`` without the error events, which go to ``on_consume_error``."""
        records = []
        for msg in msgs:
            err = msg.error()
            if err is None:
                records.append(msg)
            else:
                self.on_consume_error(err)
        return records

    def _run(self, batch: Batch, msgs: list[Any], start: int, end: int, now: float) -> None:
        """Records ``msgs[start:end]``: consecutive offsets of one partition."""
        first = msgs[start]
        state = self.routes[self.only_topic or first.topic()]
        part, count = first.partition(), end - start
        tp = (state.name, part)
        batch.cover(tp, first.offset())
        self.tracker.consumed(tp, first.offset() + count - 1)
        state.consumed += count
        self.journal.consumed(state.name, count)
        outputs: dict[int, list[Item]] = {}
        if state.pipeline is not None:
            state.pipeline.consumed(count)
            plan = state.pipeline.plan(part, msgs, start, count, now)
            outputs = plan.outputs
            if plan.dropped:
                self.journal.dropped(state.name, plan.dropped, batch, now)
        total = count - len(outputs) + sum(len(items) for items in outputs.values())
        if total == 0:
            return
        run = self._new_run(batch, state, part, total, now)
        lo, pos = start, 0
        for i in sorted(outputs):
            pos = self._raw(run, msgs, lo, i, pos)
            for item in outputs[i]:
                self._item(run, item, pos)
                pos += 1
            lo = i + 1
        self._raw(run, msgs, lo, end, pos)
        run.close()

    def _new_run(self, batch: Batch, state: RouteState, part: int, total: int, now: float) -> Run:
        shadow_part = part if part < state.shadow_partitions else -1
        landed = self.journal.lineage if self.journal.active else None
        return Run(
            batch,
            state.name,
            (state.name, part),
            (state.shadow, shadow_part),
            total,
            self.journal.at_ms(now),
            self.journal.item_landed,
            landed,
        )

    def _raw(self, run: Run, msgs: list[Any], lo: int, hi: int, pos: int) -> int:
        """Produce ``msgs[lo:hi]`` as they came, from position ``pos`` of the run; returns
        the position after them. Only the run's first and last record get a report."""
        if lo >= hi:
            return pos
        if run.each or self.lineage is not None:
            return self._headed(run, msgs, lo, hi, pos)
        run.trace(msgs[lo].offset(), hi - lo)
        produce, (shadow, part) = self.producer.produce, run.shadow
        last = pos + hi - lo - 1
        if pos == 0:
            self._one(run, msgs[lo], 0)
            lo += 1
        tail = hi - 1 if last == run.count - 1 and hi - 1 >= lo else hi
        for i in range(lo, tail):
            msg = msgs[i]
            ts_type, ts = msg.timestamp()
            try:  # positional: (topic, value, key, partition, callback, -, timestamp, headers)
                produce(
                    shadow,
                    msg.value(),
                    msg.key(),
                    part,
                    None,
                    None,
                    ts if ts_type else 0,
                    msg.headers(),
                )
            except (BufferError, KafkaException):  # a full queue, or a refused record
                self._slow(
                    run,
                    shadow,
                    msg.value(),
                    msg.key(),
                    part,
                    None,
                    ts if ts_type else 0,
                    msg.headers(),
                )
        if tail < hi:
            self._one(run, msgs[tail], last)
        return last + 1

    def _headed(self, run: Run, msgs: list[Any], lo: int, hi: int, pos: int) -> int:
        """``_raw`` with the lineage header on every record (``bridge.lineage_header``, or
        a shadow partition chosen by the key, where the order of records proves nothing)."""
        shadow, part = run.shadow
        header, prefix = self.lineage or _ORIGIN, f"{run.source[0]}/{run.source[1]}/".encode()
        for i in range(lo, hi):
            msg = msgs[i]
            offset, (ts_type, ts), headers = msg.offset(), msg.timestamp(), msg.headers()
            origin = (header, prefix + b"%d" % offset)
            headers = [*headers, origin] if headers else [origin]
            if not run.each:
                run.trace(offset, 1)
            report = run.report(pos) if run.needs_report(pos) else None
            self._produce(
                run, shadow, msg.value(), msg.key(), part, report, ts if ts_type else 0, headers
            )
            pos += 1
        return pos

    def _one(self, run: Run, msg: Any, pos: int) -> None:
        """A consumed record produced as it came, with a delivery report (first or last)."""
        ts_type, ts = msg.timestamp()
        shadow, part = run.shadow
        report = run.report(pos)
        self._produce(
            run, shadow, msg.value(), msg.key(), part, report, ts if ts_type else 0, msg.headers()
        )

    def _item(self, run: Run, item: Item, pos: int) -> None:
        """An item from the pipeline (changed, copied or released): produced with a report
        when its ledger lines need the shadow offset, or when the run needs one there."""
        rec = item.record
        if item.injections and self.journal.active:
            report: Callable[[Any, Any], None] | None = run.report(pos, item)
        else:
            report = run.report(pos) if run.needs_report(pos) else None
            if item.injections:  # nothing to write when it lands: counted now
                self.journal.count(run.route, item)
        headers: list[Any] | None = list(rec.headers) if rec.headers else None
        if self.lineage is not None or run.each:
            origin = (self.lineage or _ORIGIN, f"{rec.topic}/{rec.partition}/{rec.offset}".encode())
            headers = [*(headers or ()), origin]
        if not run.each:
            run.trace(rec.offset, 1)
        shadow, part = run.shadow
        self._produce(run, shadow, rec.value, rec.key, part, report, rec.timestamp, headers)

    def _produce(
        self,
        run: Run,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        part: int,
        report: Callable[[Any, Any], None] | None,
        ts: int,
        headers: Sequence[Any] | None,
    ) -> None:
        try:  # positional, as in ``_raw``; the keyword form is the slow path
            self.producer.produce(topic, value, key, part, report, None, ts, headers)
        except (BufferError, KafkaException):
            self._slow(run, topic, value, key, part, report, ts, headers)

    def _slow(
        self,
        run: Run,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        part: int,
        report: Callable[[Any, Any], None] | None,
        ts: int,
        headers: Sequence[Any] | None,
    ) -> None:
        """A produce that waits for room in a full queue; a record the client refuses is a
        failed delivery (reported to ``report``, or counted by the run)."""
        try:
            produce_with_room(
                self.producer,
                topic,
                value,
                key,
                partition=part,
                on_delivery=report,
                timestamp=ts,
                headers=headers,
            )
        except KafkaException as exc:  # refused, and no report to tell
            log.error("%s[%d]: record refused: %s", topic, part, exc.args[0])
            run.refused()

    # -- held items ---------------------------------------------------------------------

    def emit(self, state: RouteState, released: dict[int, list[Item]], now: float) -> int:
        """Produce items the pipeline released, one run per partition; returns how many."""
        if not released:
            return 0
        batch = self.tracker.new_batch()
        for part, items in released.items():
            if not items:  # what was released was held or dropped again by a later stage
                continue
            for item in items:
                batch.cover((state.name, part), item.record.offset)
            run = self._new_run(batch, state, part, len(items), now)
            for pos, item in enumerate(items):
                self._item(run, item, pos)
            run.close()
        batch.seal()
        return sum(len(items) for items in released.values())

    def tick(self, now: float) -> None:
        """Schedules, episodes and releases of held records, once per loop turn."""
        self.journal.settle()
        for state, pipeline in self.pipelines:
            for ev in pipeline.tick(now):
                self.journal.episode(state.name, ev.stage, ev.kind, ev.at)
            released, dropped = pipeline.due(now)
            if dropped:
                batch = self.tracker.new_batch()
                self.journal.dropped(state.name, dropped, batch, now)
                batch.seal()
            self.emit(state, released, now)

    def release(self, tps: list[TP] | None, now: float) -> int:
        """Emit everything held (for ``tps``, or all); returns how many records."""
        total = 0
        for state, pipeline in self.pipelines:
            parts = None if tps is None else [p for t, p in tps if t == state.name]
            if parts != []:
                total += self.emit(state, pipeline.drain(parts), now)
        return total

    def held_floor(self, tp: TP) -> int | None:
        state = self.routes.get(tp[0])
        if state is None or state.pipeline is None:
            return None
        return state.pipeline.oldest_held(tp[1])


_ERROR = Message.error
_PARTITION = Message.partition
_ORIGIN = LINEAGE_HEADER  # the header's name when a shadow partition is the key's


def runs(msgs: Sequence[Any], only_topic: str) -> list[tuple[int, int]]:
    """``msgs`` (records, no error events) cut into runs [start, end) of consecutive
    offsets of one partition (of one topic).

    The partitions are compared all at once (numpy); within one partition offsets only
    grow, so a stretch whose last offset is as far from its first as its length says is
    one run, and one that is not is cut where the offsets jump, by bisection."""
    n = len(msgs)
    if n == 0:
        return []
    parts = np.fromiter(map(_PARTITION, msgs), dtype=np.int64, count=n)
    cuts = parts[1:] != parts[:-1]
    if not only_topic:  # several routes: a topic change cuts too
        topics = [msg.topic() for msg in msgs]
        cuts |= np.fromiter(map(ne, topics[1:], topics[:-1]), dtype=bool, count=n - 1)
    bounds = [0, *(np.flatnonzero(cuts) + 1).tolist(), n]
    out: list[tuple[int, int]] = []
    for lo, hi in pairwise(bounds):
        while lo < hi:
            end = _contiguous_end(msgs, lo, hi)
            out.append((lo, end))
            lo = end
    return out


def _contiguous_end(msgs: Sequence[Any], lo: int, hi: int) -> int:
    """The end of the consecutive offsets from ``msgs[lo]`` within ``msgs[lo:hi]``, one
    partition's records: ``offset - index`` never falls, so bisection finds where it
    first rises."""
    first = msgs[lo].offset() - lo
    if msgs[hi - 1].offset() - (hi - 1) == first:
        return hi
    good, bad = lo, hi - 1  # msgs[good] continues the run, msgs[bad] does not
    while bad - good > 1:
        mid = (good + bad) // 2
        if msgs[mid].offset() - mid == first:
            good = mid
        else:
            bad = mid
    return bad
