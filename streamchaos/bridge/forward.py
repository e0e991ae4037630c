"""The hot path: consumed messages → engine (only the selected ones) → shadow topics.

Unselected records are produced as raw bytes straight from the consumed message. Only
records a fault may select become ``Record`` objects; those of one partition's run in a
consumed batch go through the engine together, before the run is produced, so changed
records keep their place in the shadow. Each produce call is tracked by a ``Batch`` so
offsets are committed only for what landed; injected outputs get their own delivery
callback that writes the ledger line with the shadow coordinates.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import KafkaException

from streamchaos.bridge.offsets import TP, Batch, OffsetTracker
from streamchaos.config import Config, Route
from streamchaos.engine import RouteEngine
from streamchaos.faults.base import FaultContext, Held, Revalued
from streamchaos.kafkatools import produce_with_room
from streamchaos.ledger import Ledger, coords
from streamchaos.metrics import Metrics
from streamchaos.record import Emission, Record

log = logging.getLogger(__name__)


class RouteState:
    """Per-route constants and counters the hot loop needs."""

    __slots__ = ("consumed", "engine", "failed", "name", "produced", "shadow", "shadow_partitions")

    def __init__(
        self, route: Route, shadow_partitions: int, seed: int, ctx: FaultContext | None = None
    ) -> None:
        self.name = route.source
        self.shadow = route.shadow
        self.shadow_partitions = shadow_partitions
        self.engine = RouteEngine(route.source, route.faults, seed, ctx) if route.faults else None
        self.consumed = 0
        self.produced = 0
        self.failed = 0


# what the engine made of a partition's picked records, by offset: a list of emissions
# (the general path), or a (value, delivery callback) pair to produce in the record's place
Picks = dict[int, Any]
NO_PICKS: Picks = {}
HELD: list[Emission] = []  # a record a fault holds: nothing to produce now (never mutated)


# a held record as its produce call will take it (``_Run._hold``): (source partition,
# value, key, shadow partition, timestamp, headers with the lineage header)
Produce = tuple[int, bytes | None, bytes | None, int, int, list[Any] | None]


class _Run:
    """Bookkeeping for a run of consecutive records of one partition within a batch."""

    __slots__ = ("batch", "done", "fwd", "part", "prefix", "shadow_part", "slow", "state", "topic")

    def __init__(self, fwd: Forwarder, batch: Batch) -> None:
        self.fwd, self.batch = fwd, batch
        self.topic, self.part = "", -1
        self.shadow_part, self.prefix = -1, b""  # the run's shadow partition, lineage prefix
        self.slow = 0  # records of the run the engine took (produced by ``emit``, or dropped)
        self.state: RouteState | None = None
        # per partition, what the engine made of the batch's records so far, by offset: a
        # record is processed once even if a partition's records come in several runs
        self.done: dict[TP, Picks] = {}

    def switch(
        self, topic: str, part: int, offset: int, seen: int, high: int
    ) -> tuple[str, int, bytes]:
        """Close the previous run (``seen`` records, the last at ``high``); return (shadow,
        shadow partition, lineage prefix) of the one starting at ``offset``."""
        self.close(seen, high)
        state = self.state = self.fwd.routes[topic]
        self.topic, self.part = topic, part
        if (topic, part) not in self.batch.lows:
            self.batch.lows[(topic, part)] = offset
        self.shadow_part = part if part < state.shadow_partitions else -1
        self.prefix = f"{topic}/{part}/".encode()
        return state.shadow, self.shadow_part, self.prefix

    def pick(self, msgs: list[Any], start: int, now: float) -> tuple[Picks, int]:
        """Run the engine over the records of this run, from ``msgs[start]``, that a fault
        may select, all at once; return the partition's outputs by offset, and the offset
        up to which that answer holds. Selection is by offset, so a contiguous run finds
        its picks by index arithmetic; gaps (compaction, transaction markers) take a scan.
        A pick found by arithmetic may lie in a later run of the same partition (after
        other partitions' records, with a gap to match): it is processed now and found in
        ``done`` when the loop gets there."""
        engine = self.state.engine if self.state is not None else None
        if engine is None:
            return NO_PICKS, 1 << 62
        done = self.done.setdefault((self.topic, self.part), {})
        first = msgs[start].offset()
        end = first + len(msgs) - start
        if engine.needs_all:
            found = self._scan(msgs, start)
            end = msgs[found[-1]].offset() + 1
        else:
            cands = engine.candidates(self.part, first, end - first)
            if not cands:
                return done, end
            by_index = self._by_index(msgs, start, first, cands)
            if by_index is not None:
                found = by_index
            else:
                found = self._scan(msgs, start)
                last = msgs[found[-1]].offset()
                if last >= end:
                    cands, end = engine.candidates(self.part, first, last + 1 - first), last + 1
                wanted = set(cands)
                found = [j for j in found if msgs[j].offset() in wanted]
        if done:
            found = [j for j in found if msgs[j].offset() not in done]
        if engine.lone_hold is not None:
            self._hold(engine, [msgs[j] for j in found], now, done)
            return done, end
        if engine.lone is not None:
            offsets = [msgs[j].offset() for j in found]
            values = [msgs[j].value() for j in found]
            results = engine.revalue(self.part, offsets, values, now)
            if results is not None:
                self._revalued(offsets, values, results, now, done)
                return done, end
        records = [Record.from_message(msgs[j]) for j in found]
        outs = engine.process_many(records, now)
        done.update(zip((r.offset for r in records), outs, strict=True))
        return done, end

    def _revalued(
        self,
        offsets: list[int],
        values: list[bytes | None],
        results: list[Revalued],
        now: float,
        done: Picks,
    ) -> None:
        """``done`` gets (value, delivery callback) for each record ``revalue`` saw: the hot
        loop produces it in the consumed record's place (an unchanged one as it came)."""
        plain = self.batch.on_delivery
        fwd, lines = self.fwd, self.fwd.ledger.active
        report: Any = None
        changed = 0
        for offset, value, result in zip(offsets, values, results, strict=True):
            if result is None:
                done[offset] = (value, plain)
            elif not lines:  # nothing to write when it lands: counted now
                done[offset] = (result[0], plain)
                changed += 1
            else:
                if report is None:
                    report = fwd.lone_report(self.batch, self.topic, self.part, now)
                done[offset] = (result[0], partial(report, offset, result[1]))
        if changed:
            fwd.lone_tally(self.topic)[2] += changed

    def _hold(self, engine: RouteEngine, msgs: list[Any], now: float, done: Picks) -> None:
        """``done`` gets, for each record ``RouteEngine.hold`` saw: ``HELD`` if its stage
        took it (or, in its place, the ``Held`` records that taking it released early),
        else (value, callback), to produce as it came.

        The stage holds each record as its produce call's arguments, taken now from the
        consumed message: releasing it later is that one produce call, with no ``Record``
        or ``Emission`` made for it."""
        lineage, part = self.fwd.lineage, self.part
        shadow_part, prefix = self.shadow_part, self.prefix
        offsets: list[int] = []
        items: list[Produce] = []
        for msg in msgs:
            offset = msg.offset()
            headers = msg.headers()
            if lineage is not None:
                origin = (lineage, prefix + b"%d" % offset)
                headers = [*headers, origin] if headers else [origin]
            ts_type, ts = msg.timestamp()
            offsets.append(offset)
            ts = ts if ts_type else 0
            items.append((part, msg.value(), msg.key(), shadow_part, ts, headers))
        taken, early = engine.hold(part, offsets, items, now)
        plain = self.batch.on_delivery
        for item, offset, took in zip(items, offsets, taken, strict=True):
            done[offset] = HELD if took else (item[1], plain)
        for i, released in early:
            done[offsets[i]] = released

    def _by_index(
        self, msgs: list[Any], start: int, first: int, offsets: list[int]
    ) -> list[int] | None:
        found = []
        part, topic, only = self.part, self.topic, self.fwd.only_topic
        for offset in offsets:
            j = start + offset - first
            msg = msgs[j]
            if (
                msg.offset() != offset
                or msg.partition() != part
                or not (only or msg.topic() == topic)
                or msg.error() is not None
            ):
                return None
            found.append(j)
        return found

    def _scan(self, msgs: list[Any], start: int) -> list[int]:
        """Indices of this run's records from ``start`` on (until another partition)."""
        found = []
        for j in range(start, len(msgs)):
            msg = msgs[j]
            if msg.error() is not None:
                continue
            if msg.partition() != self.part or not self._same_topic(msg):
                break
            found.append(j)
        return found

    def _same_topic(self, msg: Any) -> bool:
        return bool(self.fwd.only_topic) or msg.topic() == self.topic

    def close(self, seen: int, high: int) -> None:
        """The run ends: ``seen`` records, the last at offset ``high``."""
        state = self.state
        if state is None:
            return
        fwd = self.fwd
        fwd.tracker.consumed((self.topic, self.part), high)
        self.batch.add_outputs(state.name, seen - self.slow)  # produced by the hot loop
        state.consumed += seen
        if state.engine is not None:
            state.engine.consumed(seen)
        fwd.consumed_counters[state.name].inc(seen)
        self.state = None
        self.slow = 0


class Forwarder:
    def __init__(
        self,
        cfg: Config,
        producer: Any,
        tracker: OffsetTracker,
        metrics: Metrics,
        ledger: Ledger,
        routes: dict[str, RouteState],
        epoch: float,
    ) -> None:
        self.cfg = cfg
        self.producer = producer
        self.tracker = tracker
        self.metrics = metrics
        self.ledger = ledger
        self.routes = routes
        self.by_shadow = {s.shadow: s for s in routes.values()}
        # each route's records-consumed counter, labelled once (``labels`` costs µs a run)
        self.consumed_counters = {name: metrics.consumed.labels(route=name) for name in routes}
        self.lineage = cfg.bridge.lineage_header
        self.epoch = epoch  # wall-clock seconds at experiment time 0
        self.engines = [(s, s.engine) for s in routes.values() if s.engine is not None]
        self.only_topic = next(iter(routes)) if len(routes) == 1 else ""
        self.on_consume_error: Callable[[Any], None] = lambda err: None
        self._tallies: dict[tuple[str, str, str], list[Any]] = {}  # counter, stage, pending
        self._stages = {
            (st.name, stage.name): stage for st, eng in self.engines for stage in eng.stages
        }

    def at_ms(self, now: float) -> int:
        return int((self.epoch + now) * 1000)

    # -- consumed batches ---------------------------------------------------------------

    def forward(self, msgs: list[Any], now: float) -> None:
        """Produce each consumed record to its shadow; one ``Batch`` tracks their acks.

        The loop is the bridge's hot path (~2 µs a record): per-partition constants, and
        the engine's outputs for the run's picked records, are worked out once per run of
        records from one partition; counters are locals; a record no fault picked costs
        one comparison with the next pick's offset.
        """
        batch = self.tracker.new_batch()
        produce = self.producer.produce
        on_delivery = batch.on_delivery
        lineage = self.lineage
        run = _Run(self, batch)
        shadow, shadow_part, prefix = "", -1, b""
        picks: Picks = NO_PICKS
        ahead: list[int] = []  # the offsets in ``picks``, ascending
        picks_end = nxt = 0  # the picks hold up to ``picks_end``; the next one is at ``nxt``
        only = self.only_topic  # one source: no ``msg.topic()`` (a new str per call) needed
        run_topic, run_part, seen, high = "", -1, 0, -1  # the current run, in locals
        for index, msg in enumerate(msgs):
            if msg.error() is not None:
                self.on_consume_error(msg.error())
                continue
            part = msg.partition()
            topic = only or msg.topic()
            offset = msg.offset()
            if part != run_part or topic != run_topic:
                shadow, shadow_part, prefix = run.switch(topic, part, offset, seen, high)
                picks, picks_end = run.pick(msgs, index, now)
                ahead = sorted(picks)
                nxt = _following(ahead, offset, picks_end)
                run_topic, run_part, seen = topic, part, 0
            seen += 1
            high = offset
            value, callback = msg.value(), on_delivery
            # one comparison: a pick, the end of what the picks hold, or past a pick whose
            # record a gap left out
            if offset >= nxt:
                if offset >= picks_end:
                    picks, picks_end = run.pick(msgs, index, now)
                    ahead = sorted(picks)
                nxt = _following(ahead, offset + 1, picks_end)
                ems = picks.get(offset)
                if ems is not None:
                    if ems.__class__ is tuple:  # (new value, callback): ``_Run._revalued``
                        value, callback = ems
                    else:
                        run.slow += 1
                        if ems:
                            self.emit(topic, ems, batch, now)
                        continue
            headers = msg.headers()
            if lineage is not None:
                origin = (lineage, prefix + b"%d" % offset)
                headers = [*headers, origin] if headers else [origin]
            ts_type, ts = msg.timestamp()
            try:
                produce(  # positional: (topic, value, key, partition, callback, -, ts, headers)
                    shadow,
                    value,
                    msg.key(),
                    shadow_part,
                    callback,
                    None,
                    ts if ts_type else 0,
                    headers,
                )
            except (BufferError, KafkaException):  # a full queue, or a refused record
                produce_with_room(
                    self.producer,
                    shadow,
                    value,
                    msg.key(),
                    partition=shadow_part,
                    on_delivery=callback,
                    timestamp=ts if ts_type else 0,
                    headers=headers,
                )
        run.close(seen, high)
        batch.seal()

    # -- emissions from the engine ------------------------------------------------------

    def emit(self, route: str, ems: list[Emission], batch: Batch, now: float) -> None:
        """Produce (or ledger, for drops) what the engine returned, tracked by ``batch``
        (not sealed yet, so a delivery report during a full-queue wait cannot finish it).
        A record the client refuses is a failed delivery (counted, never committed). A
        route whose lone stage holds what the bridge handed it (``RouteEngine.hold``) gets
        ``Held`` records back instead of emissions: ``_emit_held``."""
        if ems and ems[0].__class__ is Held:
            self._emit_held(route, ems, batch, now)
            return
        state = self.routes[route]
        shadow, partitions, lineage = state.shadow, state.shadow_partitions, self.lineage
        plain = batch.on_delivery
        lines = self._line_report(batch, route)
        at_ms = self.at_ms(now)
        outputs = 0
        for em in ems:
            src = em.source
            batch.cover((src.topic, src.partition), src.offset)
            rec = em.record
            if rec is None:
                for inj in em.injections:  # a drop: ledgered now
                    if self.ledger.injection(route, inj, src, None, "dropped", at_ms, lines):
                        batch.add_pending(1)
                    self._count(route, inj)
                continue
            callback = plain
            if em.injections:
                if self.ledger.active:  # the line is written when the record lands
                    callback = partial(self._injected_delivered, batch, route, em, at_ms)
                else:  # nothing to write: counted now (as ``_Run._revalued`` counts)
                    for inj in em.injections:
                        self._count(route, inj)
            headers = list(rec.headers)
            if lineage is not None:
                headers.append((lineage, f"{src.topic}/{src.partition}/{src.offset}".encode()))
            outputs += 1
            part = rec.partition if rec.partition < partitions else -1
            self._produce(shadow, rec.value, rec.key, part, callback, rec.timestamp, headers)
        if outputs:
            batch.add_outputs(route, outputs)

    def _emit_held(self, route: str, held: list[Held], batch: Batch, now: float) -> None:
        """``emit`` for records ``route``'s lone holding stage kept as ready produce calls
        (``_Run._hold``): each is produced as it came; with a ledger, its line is written
        when it lands, as for a record changed in place."""
        shadow = self.routes[route].shadow
        callback = batch.on_delivery
        reports: dict[int, Callable[..., None]] | None = {} if self.ledger.active else None
        lows: dict[int, int] = {}  # per partition, the lowest offset released
        for item in held:
            offset = item.offset
            part, value, key, shadow_part, ts, headers = item.item  # a ``Produce``
            if lows.get(part, offset) >= offset:
                lows[part] = offset
            if reports is not None:
                report = reports.get(part)
                if report is None:
                    report = reports[part] = self.lone_report(batch, route, part, now)
                callback = partial(report, offset, item)
            self._produce(shadow, value, key, shadow_part, callback, ts, headers)
        for part, low in lows.items():
            batch.cover((route, part), low)
        batch.add_outputs(route, len(held))
        if reports is None:  # nothing to write when they land: counted now
            self.lone_tally(route)[2] += len(held)

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        callback: Callable[[Any, Any], None],
        timestamp: int,
        headers: list[Any] | None,
    ) -> None:
        """One produce of a released or injected record; a record the client refuses is a
        failed delivery (reported to ``callback``)."""
        try:  # positional, as in ``forward``; the keyword form is the slow path
            self.producer.produce(topic, value, key, partition, callback, None, timestamp, headers)
        except (BufferError, KafkaException):  # a full queue, or a refused record
            produce_with_room(
                self.producer,
                topic,
                value,
                key,
                partition=partition,
                on_delivery=callback,
                timestamp=timestamp,
                headers=headers,
            )

    def _injected_delivered(
        self, batch: Batch, route: str, em: Emission, at_ms: int, err: Any, msg: Any
    ) -> None:
        """The injected record's delivery report (with a ledger only): its ledger lines,
        with the shadow coordinates. Lines bound for the ledger topic join ``batch`` before
        this report is counted, so the source offset stays uncommitted until they land."""
        shadow, status = _landing(err, msg)
        report = self._line_report(batch, route)
        lines = 0
        for inj in em.injections:
            lines += self.ledger.injection(route, inj, em.source, shadow, status, at_ms, report)
        if lines:
            batch.add_pending(lines)
        batch.on_delivery(err, msg)
        for inj in em.injections:
            self._count(route, inj)

    def _lone(self, route: str) -> Any:
        """``route``'s lone stage (its only fault): that of the records ``revalue`` changed
        or ``hold`` held."""
        engine = self.routes[route].engine
        assert engine is not None
        lone = engine.lone or engine.lone_hold
        assert lone is not None
        return lone

    def lone_tally(self, route: str) -> list[Any]:
        """``_tally`` of ``route``'s lone stage."""
        stage = self._lone(route)
        return self._tally(route, stage.name, stage.config.type)

    def lone_report(
        self, batch: Batch, route: str, partition: int, now: float
    ) -> Callable[..., None]:
        """The delivery callback, still to be given the record's source offset and the
        fault's note, of the records of ``route``'s ``partition`` its lone stage changed in
        place (``_Run._revalued``) or held as consumed (``_emit_held``): it writes their
        ledger lines, with the detail the fault's ``describe`` makes of the note."""
        fault = self._lone(route).instance(partition)
        tally, at_ms = self.lone_tally(route), self.at_ms(now)
        return partial(self._lone_delivered, batch, route, partition, fault, tally, at_ms)

    def _lone_delivered(
        self,
        batch: Batch,
        route: str,
        partition: int,
        fault: Any,
        tally: list[Any],
        at_ms: int,
        offset: int,
        note: Any,
        err: Any,
        msg: Any,
    ) -> None:
        """``_injected_delivered`` for a record of ``lone_report``: the same ledger line."""
        shadow, status = _landing(err, msg)
        inj = fault.injection("modify", **fault.describe(note))
        source = Record(route, partition, offset, None, None)
        report = self._line_report(batch, route)
        if self.ledger.injection(route, inj, source, shadow, status, at_ms, report):
            batch.add_pending(1)
        batch.on_delivery(err, msg)
        tally[2] += 1

    def _line_report(self, batch: Batch, route: str) -> Callable[[Any, Any], None] | None:
        """The delivery callback of ``route``'s injection lines for the ledger topic (None
        without one): their acknowledgement completes ``batch`` too."""
        return partial(batch.on_line_delivery, route) if self.ledger.producer else None

    def _count(self, route: str, inj: Any) -> None:
        """Counted now, added to its counter and episode at the next ``settle``."""
        self._tally(route, inj.fault, inj.type)[2] += 1

    def _tally(self, route: str, fault: str, kind: str) -> list[Any]:
        """[counter, stage, count not yet settled] of one route, fault and fault type."""
        key = (route, fault, kind)
        pending = self._tallies.get(key)
        if pending is None:
            counter = self.metrics.injections.labels(
                experiment=self.cfg.experiment, route=route, fault=fault, type=kind
            )
            pending = self._tallies[key] = [counter, self._stages.get((route, fault)), 0]
        return pending

    def settle(self) -> None:
        """Counters and episode tallies catch up with the injections since the last call
        (once per loop turn, and before episodes end): one ``inc`` per label set."""
        for pending in self._tallies.values():
            if pending[2]:
                pending[0].inc(pending[2])
                if pending[1] is not None:
                    pending[1].injected += pending[2]
                pending[2] = 0

    # -- time-driven work ---------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Schedules, episodes and releases of held records, once per loop turn."""
        self.settle()
        for state, engine in self.engines:
            events, released = engine.tick(now)
            for ev in events:
                self._episode(state.name, ev.stage, ev.kind, ev.at)
            if released:
                batch = self.tracker.new_batch()
                self.emit(state.name, released, batch, now)
                batch.seal()

    def _episode(self, route: str, stage: Any, kind: str, at: float) -> None:
        cfg = stage.config
        detail = cfg.model_dump(mode="json", exclude={"type", "name"})
        if kind == "episode_end":
            detail.update(stage.episode_stats())
        self.ledger.episode(route, stage.name, cfg.type, kind, self.at_ms(at), detail)
        labels = {"experiment": self.cfg.experiment, "route": route, "fault": stage.name}
        self.metrics.fault_active.labels(**labels).set(1 if kind == "episode_start" else 0)
        log.info("%s: fault %s (%s) %s", route, stage.name, cfg.type, kind.replace("_", " "))

    def update_gauges(self) -> None:
        self.settle()
        for state, engine in self.engines:
            for stage in engine.stages:
                labels = {
                    "experiment": self.cfg.experiment,
                    "route": state.name,
                    "fault": stage.name,
                }
                self.metrics.fault_intensity.labels(**labels).set(stage.intensity)
                self.metrics.held.labels(route=state.name, fault=stage.name).set(engine.held(stage))

    def release(self, tps: list[TP] | None, now: float) -> int:
        """Emit everything held (for ``tps``, or all); returns how many records."""
        total = 0
        for state, engine in self.engines:
            parts = None if tps is None else [p for t, p in tps if t == state.name]
            if parts == []:
                continue
            ems = engine.drain(parts)
            if ems:
                batch = self.tracker.new_batch()
                self.emit(state.name, ems, batch, now)
                batch.seal()
                total += len(ems)
        return total

    def held_floor(self, tp: TP) -> int | None:
        state = self.routes.get(tp[0])
        if state is None or state.engine is None:
            return None
        return state.engine.oldest_held(tp[1])

    def close_episodes(self, now: float) -> None:
        """At shutdown, active episodes end now (the ledger must pair every start)."""
        self.settle()
        for state, engine in self.engines:
            for stage in engine.stages:
                if stage.intensity > 0:
                    self._episode(state.name, stage, "episode_end", now)
                    stage.set_intensity(0.0)


def _following(ahead: list[int], offset: int, end: int) -> int:
    """The first of the ascending offsets ``ahead`` at or after ``offset``, if below
    ``end``; else ``end`` (where the engine must be asked again)."""
    j = bisect_left(ahead, offset)
    return ahead[j] if j < len(ahead) and ahead[j] < end else end


def _landing(err: Any, msg: Any) -> tuple[dict[str, Any] | None, str]:
    """Where a delivery report says the record landed (None when it did not), and the
    ledger status that goes with it."""
    if err is not None:
        return None, "failed"
    return coords(msg.topic(), msg.partition(), msg.offset()), "delivered"
