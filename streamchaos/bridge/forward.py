"""The hot path: a consumed batch → each route's pipeline → produce calls by index.

A consumed batch is cut into runs of consecutive offsets of one partition (``runs.py``);
for each, the route's pipeline names by batch index what replaces the records its faults
touched, and every other record goes from the message to its produce call as it came. A
run's produce calls are one ``checkpoint.Run``: only its first and last record, and those
whose ledger line needs a shadow offset, get a report. Held items are produced alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaException, Message

from streamchaos.bridge.checkpoint import TP, Batch, OffsetTracker, Report, Run
from streamchaos.bridge.held import Held
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.long_hold import LongHolds
from streamchaos.bridge.replay import Progress, output_id
from streamchaos.bridge.runs import runs
from streamchaos.bridge.setup import RouteState
from streamchaos.config import Config
from streamchaos.engine import Plan
from streamchaos.kafkatools import produce_with_room
from streamchaos.lineage import LINEAGE_HEADER, origin_prefix
from streamchaos.record import Item

log = logging.getLogger(__name__)
_ERROR = Message.error


class Forwarder(Held):
    """Consumed batches to shadow produce calls; held records and partitions: ``Held``."""

    def __init__(
        self,
        cfg: Config,
        producer: Any,
        tracker: OffsetTracker,
        journal: Journal,
        routes: dict[str, RouteState],
        counts: dict[str, int] | None = None,
    ) -> None:
        """``counts``: partitions of the topics the bridge reads and writes (its long-hold
        topics among them)."""
        self.producer, self.tracker, self.journal, self.routes = producer, tracker, journal, routes
        self.lineage = cfg.bridge.lineage_header  # a header too, beside the ledger's lines
        self.header = self.lineage or LINEAGE_HEADER  # also where the key picks partitions
        self.refresh()
        self.holds = LongHolds(cfg, producer, routes, counts or {})  # beyond the horizon
        tracker.held_floor = self.held_floor  # commit points stay behind what is held
        self.holds.emit, self.holds.drop = self.emit_from_hold, self._drop
        self.holds.consumed, self.holds.progress = tracker.consumed, lambda: self.progress
        one = len(routes) == 1 and not self.holds.topics
        self.only_topic = next(iter(routes)) if one else ""
        self.on_consume_error: Callable[[Any], None] = lambda err: None
        self.progress: Progress | None = None  # exactly-once: what commits say (replay.py)
        self.committed: Callable[[list[TP]], dict[TP, tuple[int, str | None]]] = lambda _: {}

    def refresh(self) -> None:
        """The routes that have a pipeline (again, after a live change)."""
        self.pipelines = [(s, s.pipeline) for s in self.routes.values() if s.pipeline is not None]

    # -- consumed batches ---------------------------------------------------------------

    def forward(self, msgs: list[Any], now: float) -> None:
        """Produce each consumed record to its shadow; one ``Batch`` tracks what landed."""
        if any(map(_ERROR, msgs)):  # rare: the client's events among the records
            msgs = self._records_only(msgs)
        batch = self.tracker.new_batch()
        for start, end in runs(msgs, self.only_topic):
            if msgs[start].topic() in self.holds.topics:  # held records, maybe due
                self.holds.release_due(batch, msgs, start, end, now)
            else:
                self._run(batch, msgs, start, end, now)
        batch.seal()

    def _records_only(self, msgs: list[Any]) -> list[Any]:
        """``msgs`` without the error events, which go to ``on_consume_error``."""
        for err in filter(None, map(_ERROR, msgs)):
            self.on_consume_error(err)
        return [msg for msg in msgs if msg.error() is None]

    def _run(self, batch: Batch, msgs: list[Any], start: int, end: int, now: float) -> None:
        """Records ``msgs[start:end]``: consecutive offsets of one partition."""
        head = msgs[start]
        state = self.routes[self.only_topic or head.topic()]
        part, count, first = head.partition(), end - start, head.offset()
        batch.cover((state.name, part), first)
        self.tracker.consumed((state.name, part), first + count - 1)
        state.consumed += count
        self.journal.consumed(state.name, count)
        if state.taps and state.ctx is not None:  # faults on other routes join by key
            for table in state.taps:
                table.observe(msgs, start, end, state.ctx.codec, state.ctx.undecodable)
        plan = self._plan(state, part, msgs, start, end, now)
        outputs = plan.outputs
        if self.progress is not None:  # a picked record passed as it came is an output too
            self.progress.passed((state.name, part), [msgs[i].offset() for i in plan.passed])
        if plan.dropped:
            self._drop(state.name, plan.dropped, batch, now)
        if plan.deferred:
            self.holds.park(batch, state.name, plan.deferred)
        total = count - len(outputs) + sum(map(len, outputs.values()))
        if total == 0:
            return
        run = self._new_run(batch, state, part, total, now)
        lo, pos = start, 0
        for i in sorted(outputs):
            pos = self._segment(run, msgs, lo, i, pos)
            for item in outputs[i]:
                self._track(run, item)
                self._item(run, item, pos)
                pos += 1
            lo = i + 1
        self._segment(run, msgs, lo, end, pos)
        run.close()

    def _plan(
        self, state: RouteState, part: int, msgs: list[Any], start: int, end: int, now: float
    ) -> Plan:
        """What the route's faults make of the run (read again: without what was written)."""
        progress, pipeline = self.progress, state.pipeline
        replay = progress.replay((state.name, part), msgs[start].offset()) if progress else None
        if replay is not None:
            return replay.plan(pipeline, part, msgs, start, end, now)
        if pipeline is None:
            return Plan({}, [])
        return pipeline.plan(part, msgs, start, end - start, now)

    def _new_run(self, batch: Batch, state: RouteState, part: int, total: int, now: float) -> Run:
        """The shadow partition is the source partition's when the shadow has it, else the
        key's (-1). Where the key chooses for any partition (a narrower shadow), other
        bridges may write between a run's records: each record is reported then."""
        shadow = (state.shadow, part if part < state.shadow_parts else -1)
        landed = self.journal.lineage if self.journal.active else None
        each, at_ms = state.narrow or shadow[1] < 0, self.journal.at_ms(now)
        on_item = self.journal.item_landed
        return Run(
            batch, state.name, (state.name, part), shadow, total, at_ms, on_item, landed, each
        )

    def _segment(self, run: Run, msgs: list[Any], lo: int, hi: int, pos: int) -> int:
        """Produce ``msgs[lo:hi]`` as they came, from position ``pos`` of the run; returns
        the position after them. Only the run's first and last record get a report."""
        if lo >= hi:
            return pos
        if run.each or self.lineage is not None:
            return self._headed(run, msgs, lo, hi, pos)
        run.trace(msgs[lo].offset(), hi - lo)
        after = pos + hi - lo
        if pos == 0:
            self._one(run, msgs[lo], 0)
            lo += 1
        last = after == run.count and lo < hi  # the run's last record is in this segment
        produce, (shadow, part) = self.producer.produce, run.shadow
        for msg in msgs[lo : hi - 1 if last else hi]:
            ts_type, ts = msg.timestamp()
            try:  # positional: (topic, value, key, partition, callback, -, timestamp, headers)
                ts = ts if ts_type else 0
                produce(shadow, msg.value(), msg.key(), part, None, None, ts, msg.headers())
            except (BufferError, KafkaException):  # a full queue, or a refused record
                self._one(run, msg, -1)
        if last:
            self._one(run, msgs[hi - 1], after - 1)
        return after

    def _one(self, run: Run, msg: Any, pos: int) -> None:
        """A consumed record as it came, with a report at ``pos`` (-1: none)."""
        ts_type, ts = msg.timestamp()
        report = run.report(pos) if pos >= 0 else None
        ts = ts if ts_type else 0
        self._send(run, msg.value(), msg.key(), report, ts, msg.headers())

    def _headed(self, run: Run, msgs: list[Any], lo: int, hi: int, pos: int) -> int:
        """``_segment`` with the lineage header on every record (asked for, or where the
        key chose the shadow partition and the order of records proves nothing)."""
        header, prefix = self.header, origin_prefix(*run.source)
        for msg in msgs[lo:hi]:
            offset, (ts_type, ts), headers = msg.offset(), msg.timestamp(), msg.headers()
            origin = (header, prefix + b"%d" % offset)
            if not run.each:
                run.trace(offset, 1)
            report = run.report(pos) if run.needs_report(pos) else None
            ts = ts if ts_type else 0
            self._send(run, msg.value(), msg.key(), report, ts, [*(headers or ()), origin])
            pos += 1
        return pos

    def _item(self, run: Run, item: Item, pos: int) -> None:
        """An item from the pipeline (changed, copied or released): produced with a report
        when its ledger lines need the shadow offset, or when the run needs one there."""
        if item.injections and self.journal.active:
            report: Report | None = run.report(pos, item)
        else:
            report = run.report(pos) if run.needs_report(pos) else None
            if item.injections:  # nothing to write when it lands: counted now
                self.journal.count(run.route, item)
        msg = item.message
        if msg is not None:  # the consumed message's parts (its value maybe changed)
            value = msg.value() if item.new_value is None else item.new_value
            key, headers, offset = msg.key(), msg.headers(), msg.offset()
            ts_type, ts = msg.timestamp()
            ts = ts if ts_type else 0
        else:
            rec = item.record
            value, key, ts, offset = rec.value, rec.key, rec.timestamp, rec.offset
            headers = list(rec.headers) if rec.headers else None
        if self.lineage is not None or run.each:
            topic, partition, _ = item.source
            origin = (self.header, origin_prefix(topic, partition) + b"%d" % offset)
            headers = [*(headers or ()), origin]
        if not run.each:
            run.trace(offset, 1)
        self._send(run, value, key, report, ts, headers)

    def _track(self, run: Run, item: Item) -> None:
        """An item is an output of its source record: the run's batch covers its offset
        (a released item may be older than the run), and exactly-once commits say so."""
        offset = item.offset
        run.batch.cover(run.source, offset)
        if self.progress is not None:
            self.progress.wrote(run.source, offset, output_id(item))

    def _send(
        self,
        run: Run,
        value: bytes | None,
        key: bytes | None,
        report: Report | None,
        ts: int,
        headers: Sequence[Any] | None,
    ) -> None:
        """One produce to the run's shadow partition; it waits for room in a full queue,
        and a record the client refuses is a failed delivery (for ``report``, or the run)."""
        topic, part = run.shadow
        try:  # positional first: the keyword form costs a microsecond more
            self.producer.produce(topic, value, key, part, report, None, ts, headers)
            return
        except (BufferError, KafkaException):
            pass
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
