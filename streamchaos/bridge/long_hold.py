"""The long-hold store: records held longer than ``bridge.hold_horizon`` wait in a Kafka
topic beside the route's shadow (``features.hold.shadow``), not in memory.

Why a topic and not local disk: it is as durable as the shadow, and any member of the
group can release what another held, after a rebalance or when that one is gone for good.
Under exactly-once the held record and the source offset past it go in one transaction,
and its release and the hold topic's offset past it in another, so a crash neither loses
nor repeats one; under at-least-once a crash may repeat a release, never lose one.

Holding (``park``): a deferred item is produced to the hold topic (``hold_record.py``: its
note and partition); the batch of its source record waits for the delivery report, so the
source offset commits once the record is durably held.

Releasing (``release_due``): the bridge's consumer reads the hold topics too, in the same
group. A hold partition is read in order up to its first record not yet due; the
partition is then paused and set back to that record until it is due, so memory holds no
held record, however many wait. A released record goes through the route's stages after
the one that held it and to the shadow with the ledger lines of all that was done to it;
the hold offset commits once it landed. Due times are wall-clock times: they outlive the
process that held the record. The kill switch (``drain``) and removing the holding fault
live (``removed``) release what waits at once, marked ``released_early``; a stop does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

from streamchaos.bridge.checkpoint import TP, Batch
from streamchaos.bridge.replay import Progress, output_id
from streamchaos.bridge.setup import RouteState
from streamchaos.config import Config
from streamchaos.config.holds import hold_topics, longest_hold, shortest_hold
from streamchaos.engine import Deferred, Released
from streamchaos.hold_record import HEADER, Lanes, Note, hold_topic
from streamchaos.kafkatools import produce_with_room
from streamchaos.record import Item

log = logging.getLogger(__name__)

WAKE_SLACK = 0.25  # a paused partition reads on this long after its next record is due:
# what came due meanwhile goes out in one fetch, not one fetch a record
Emit = Callable[[RouteState, dict[int, list[Item]], float, Batch], int]
Drop = Callable[[str, list[Item], Batch, float], None]


class LongHolds:
    """The long-hold topics of the bridge's routes: holding and releasing. ``bind`` gives
    it the consumer that reads them; the forwarder gives it how to emit, drop and track."""

    def __init__(
        self, cfg: Config, producer: Any, routes: dict[str, RouteState], counts: dict[str, int]
    ) -> None:
        self.producer, self.wall = producer, time.time
        horizon, suffix = cfg.bridge.hold_horizon or 0.0, cfg.safety.shadow_suffix
        self.lanes: dict[str, Lanes] = {}  # route name -> its hold topic's lanes
        self.topics: dict[str, RouteState] = {}  # hold topic -> the route it holds for
        wanted = hold_topics(cfg)
        for route in cfg.routes:
            topic = hold_topic(route.shadow, suffix)
            if topic in wanted and topic in counts:
                longest = longest_hold(route.faults, horizon) or horizon
                shortest = shortest_hold(route.faults, horizon)
                self.lanes[route.source] = Lanes(topic, shortest, longest, counts[topic])
                self.topics[topic] = routes[route.source]
        self.waiting: dict[TP, float] = {}  # paused hold partitions -> when to read on
        self.draining = False  # the kill switch: everything held goes now
        self.consumer: Any = None
        self.consumed: Callable[[TP, int], None] = _unbound
        self.emit: Emit = _unbound
        self.drop: Drop = _unbound
        self.progress: Callable[[], Progress | None] = lambda: None  # exactly-once

    def bind(self, consumer: Any) -> None:
        """Read the hold topics with ``consumer`` (paused and set back while not due)."""
        self.consumer = consumer

    # -- holding ------------------------------------------------------------------------

    def park(self, batch: Batch, route: str, deferred: list[Deferred]) -> None:
        """Produce each deferred item to its route's hold topic; ``batch`` (its source
        record's) completes only once they landed. Under exactly-once a held record is an
        output of its source record (``replay.py``): read again, it is not held twice."""
        if not deferred:
            return
        lanes, progress = self.lanes.get(route), self.progress()
        if lanes is None:  # only routes with a hold topic defer
            raise RuntimeError(f"{route}: a hold beyond bridge.hold_horizon, no hold topic")
        for d in deferred:
            item, src = d.item, d.item.source
            batch.cover((route, src[1]), src[2])
            if progress is not None:
                progress.wrote((route, src[1]), src[2], output_id(item))
            due_ms = round((self.wall() + d.seconds) * 1000)
            injections = [(i.fault, i.type, i.effect, i.detail) for i in item.injections]
            record = item.record
            note = Note(due_ms, d.after, src, record.timestamp, injections).encode()
            batch.expect()
            produce_with_room(  # a record refused is a failed delivery: not committed
                self.producer, lanes.topic, record.value, record.key,
                partition=lanes.of(d.seconds, src[1]),
                on_delivery=_reporter(batch, route, f"could not be held in {lanes.topic}"),
                headers=[*record.headers, (HEADER, note)],
            )  # fmt: skip

    # -- releasing ----------------------------------------------------------------------

    def release_due(self, batch: Batch, msgs: list[Any], start: int, end: int, now: float) -> None:
        """Hold records ``msgs[start:end]`` (consecutive, one partition): those due go out;
        at the first one not due, the partition waits, paused and set back to it."""
        head = msgs[start]
        tp: TP = (head.topic(), head.partition())
        if tp in self.waiting:  # records after one not due, read in the same batch
            return
        state = self.topics[tp[0]]
        stages = {s.name for s in state.pipeline.stages} if state.pipeline is not None else set()
        out: dict[int, list[Item]] = {}
        aside, wall_ms = Released(), self.wall() * 1000
        for msg in msgs[start:end]:
            note = Note.read(msg)
            early = note is not None and (self.draining or note.after not in stages)
            if note is not None and note.due_ms > wall_ms and not early:
                self.waiting[tp] = note.due_ms / 1000 + WAKE_SLACK
                self.consumer.pause([TopicPartition(*tp)])
                self.consumer.seek(TopicPartition(*tp, msg.offset()))
                break
            batch.cover(tp, msg.offset())
            self.consumed(tp, msg.offset())
            if note is None:
                self._unreadable(batch, state, msg)
                continue
            items = [note.item(msg, early and note.due_ms > wall_ms)]
            if state.pipeline is not None:
                after = state.pipeline.after(note.after)
                items = state.pipeline.resume(after, note.source[1], items, now, aside)
            out.setdefault(note.source[1], []).extend(items)
        self.drop(state.name, aside.dropped, batch, now)
        self.park(batch, state.name, aside.deferred)
        if out:
            self.emit(state, out, now, batch)

    def _unreadable(self, batch: Batch, state: RouteState, msg: Any) -> None:
        """A record in the hold topic without a readable note (not the bridge's, or from
        another version): to the shadow as it is, never lost, and said in the log."""
        log.error(
            "%s[%d]@%d: no readable %s header; sent to %s as it is (no lineage, no ledger line)",
            msg.topic(), msg.partition(), msg.offset(), HEADER, state.shadow,
        )  # fmt: skip
        batch.expect()
        produce_with_room(
            self.producer, state.shadow, msg.value(), msg.key(), headers=msg.headers(),
            on_delivery=_reporter(batch, state.name, f"did not land in {state.shadow}"),
        )  # fmt: skip

    def tick(self, now: float) -> None:
        """Hold partitions whose next record is due read on."""
        wall = self.wall()
        for tp, due in list(self.waiting.items()):
            if due <= wall:
                self._wake(tp)

    def drain(self, on: bool) -> None:
        """The kill switch: while on, everything held is due now."""
        self.draining = on
        for tp in list(self.waiting) if on else []:
            self._wake(tp)

    def removed(self, route: str) -> None:
        """A fault of ``route`` was removed live: what it holds goes now."""
        lanes = self.lanes.get(route)
        for tp in [tp for tp in self.waiting if lanes is not None and tp[0] == lanes.topic]:
            self._wake(tp)

    def assigned(self, tps: list[TP]) -> None:
        """Hold partitions this member reads from now on start unpaused."""
        for tp in tps:
            if tp[0] in self.topics:
                self._wake(tp)

    def forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self.waiting.pop(tp, None)

    def _wake(self, tp: TP) -> None:
        self.waiting.pop(tp, None)
        self.consumer.resume([TopicPartition(*tp)])


def _reporter(batch: Batch, route: str, failed: str) -> Callable[[Any, Any], None]:
    def reported(err: Any, msg: Any) -> None:
        if err is not None:
            log.error("%s: a record %s: %s", route, failed, err)
            batch.fail(route, 1)
        batch.reported()

    return reported


def _unbound(*args: Any) -> Any:
    raise RuntimeError("LongHolds used before the forwarder bound it")
