"""The long-hold store: records held longer than ``bridge.hold_horizon`` wait in a Kafka
topic beside the route's shadow (``features.hold.shadow``), not in memory.

Why a topic and not local disk: it is as durable as the shadow, and any member of the
group can release what another held, after a rebalance or when that one is gone for good.
Under exactly-once the held record and the source offset past it go in one transaction,
and its release and the hold topic's offset past it in another, so a crash neither loses
nor repeats one; under at-least-once a crash may repeat a release, never lose one.

Holding: a deferred item is produced to the hold topic, to the partition of its lane; the
batch of its source record waits for the delivery report, so the source offset commits
once the record is durably held (``park``).

Releasing: the bridge's consumer reads the hold topics too, in the same group. A hold
partition is read in order up to its first record not yet due; the partition is then
paused and set back to that record until it is due (``release``), so memory holds no held
record, however many wait. A released record goes through the route's stages after the
one that held it and to the shadow with the ledger lines of all that was done to it; the
hold offset commits once it landed.

Lanes keep a partition's records close to due order: those of one lane differ in hold
length by at most (longest − horizon) / lanes, so none is released later than that after
its time; every record of a fixed delay is held as long, so those come due in order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import TopicPartition

from streamchaos.bridge.checkpoint import TP, Batch
from streamchaos.bridge.replay import Progress, output_id
from streamchaos.bridge.setup import RouteState
from streamchaos.config import Config
from streamchaos.config.holds import hold_topic, hold_topics, longest_hold
from streamchaos.engine import Deferred, Released
from streamchaos.kafkatools import produce_with_room
from streamchaos.record import Injection, Item, Record

log = logging.getLogger(__name__)

HEADER = "streamchaos-hold"  # on each hold record: when it is due, and what it is
Emit = Callable[[RouteState, dict[int, list[Item]], float, Batch], int]
Drop = Callable[[str, list[Item], Batch, float], None]


class Note(NamedTuple):
    """What a hold record carries beside the record: when it is due (epoch ms), how long it
    was held, the stage it resumes after, its source coordinates and what was done to it."""

    due_ms: int
    seconds: float
    after: str
    source: tuple[str, int, int]
    injections: list[tuple[str, str, str, dict[str, Any]]]

    def encode(self) -> bytes:
        return json.dumps(self._asdict(), separators=(",", ":")).encode()

    @classmethod
    def read(cls, msg: Any) -> Note | None:
        """The note of a hold record (None: not a hold record, or unreadable)."""
        raw = next((v for k, v in msg.headers() or () if k == HEADER), None)
        if raw is None:
            return None
        try:
            fields = json.loads(raw)
            topic, partition, offset = fields["source"]
            injections = [(f, t, e, dict(d)) for f, t, e, d in fields["injections"]]
            source = (str(topic), int(partition), int(offset))
            return cls(int(fields["due_ms"]), float(fields["seconds"]), str(fields["after"]),
                       source, injections)  # fmt: skip
        except (TypeError, ValueError, KeyError):
            return None

    def item(self, msg: Any) -> Item:
        """The record as it was held, at its source coordinates, with its injections."""
        ts_type, ts = msg.timestamp()
        headers = tuple((k, v) for k, v in msg.headers() or () if k != HEADER)
        record = Record(*self.source, msg.key(), msg.value(), headers, ts if ts_type else 0)
        return Item(record, [Injection(f, t, e, d) for f, t, e, d in self.injections])


class Lanes(NamedTuple):
    """A route's hold topic and how hold lengths map to its partitions."""

    topic: str
    horizon: float
    longest: float
    partitions: int

    def of(self, seconds: float) -> int:
        """The partition of a hold of ``seconds``: lanes of equal width from the horizon
        to the route's longest hold."""
        if self.longest <= self.horizon or self.partitions == 1:
            return 0
        share = (seconds - self.horizon) / (self.longest - self.horizon)
        return max(0, min(self.partitions - 1, int(share * self.partitions)))


class LongHolds:
    """The long-hold topics of the bridge's routes: holding and releasing."""

    def __init__(
        self, cfg: Config, producer: Any, routes: dict[str, RouteState], counts: dict[str, int]
    ) -> None:
        self.producer, self.epoch = producer, 0.0  # wall-clock epoch of the bridge's time 0
        horizon, suffix = cfg.bridge.hold_horizon or 0.0, cfg.safety.shadow_suffix
        self.lanes: dict[str, Lanes] = {}  # route name -> its hold topic's lanes
        self.topics: dict[str, RouteState] = {}  # hold topic -> the route it holds for
        wanted = hold_topics(cfg)
        for route in cfg.routes:
            topic = hold_topic(route.shadow, suffix)
            if topic in wanted and topic in counts:
                longest = longest_hold(route.faults, horizon) or horizon
                self.lanes[route.source] = Lanes(topic, horizon, longest, counts[topic])
                self.topics[topic] = routes[route.source]
        self.waiting: dict[TP, float] = {}  # paused hold partitions -> when their next is due
        self.wait: Callable[[TP, int], None] = lambda tp, offset: None  # pause, set back
        self.wake: Callable[[TP], None] = lambda tp: None  # resume
        self.consumed: Callable[[TP, int], None] = lambda tp, offset: None
        self.emit: Emit = lambda state, items, now, batch: 0
        self.drop: Drop = lambda route, items, batch, now: None
        self.progress: Callable[[], Progress | None] = lambda: None  # exactly-once

    def bind(self, consumer: Any, epoch: float) -> None:
        """Read the hold topics with ``consumer``; ``epoch``: the wall-clock time of the
        bridge's time 0 (a hold record says when it is due in wall-clock time)."""
        self.epoch = epoch

        def wait(tp: TP, offset: int) -> None:
            consumer.pause([TopicPartition(*tp)])
            consumer.seek(TopicPartition(*tp, offset))

        self.wait, self.wake = wait, lambda tp: consumer.resume([TopicPartition(*tp)])

    # -- holding ------------------------------------------------------------------------

    def park(self, batch: Batch, route: str, deferred: list[Deferred]) -> None:
        """Produce each deferred item to its route's hold topic; ``batch`` (its source
        record's) completes only once they landed. Under exactly-once a held record is an
        output of its source record (``replay.py``): read again, it is not held twice."""
        lanes, progress = self.lanes.get(route), self.progress()
        for d in deferred:
            item = d.item
            src = item.source
            batch.cover((route, src[1]), src[2])
            if progress is not None:
                progress.wrote((route, src[1]), src[2], output_id(item))
            if lanes is None:  # a fault added live, with no hold topic: never here
                raise RuntimeError(f"{route}: a hold beyond bridge.hold_horizon, no hold topic")
            due_ms = round((self.epoch + d.until) * 1000)
            injections = [(i.fault, i.type, i.effect, i.detail) for i in item.injections]
            note = Note(due_ms, d.seconds, d.after, src, injections).encode()
            record = item.record
            headers = [*record.headers, (HEADER, note)]
            batch.expect()
            produce_with_room(  # a record refused is a failed delivery: not committed
                self.producer, lanes.topic, record.value, record.key,
                partition=lanes.of(d.seconds), on_delivery=_reporter(batch, route, lanes.topic),
                timestamp=record.timestamp, headers=headers,
            )  # fmt: skip

    # -- releasing ----------------------------------------------------------------------

    def release(self, batch: Batch, msgs: list[Any], start: int, end: int, now: float) -> None:
        """Hold records ``msgs[start:end]`` (consecutive, one partition): those due go out;
        at the first one not due, the partition waits, paused and set back to it."""
        head = msgs[start]
        tp: TP = (head.topic(), head.partition())
        if tp in self.waiting:  # records after one not due, read in the same batch
            return
        state = self.topics[tp[0]]
        out: dict[int, list[Item]] = {}
        aside = Released()
        for msg in msgs[start:end]:
            note = Note.read(msg)
            if note is not None and note.due_ms / 1000 - self.epoch > now:
                self.waiting[tp] = note.due_ms / 1000 - self.epoch
                self.wait(tp, msg.offset())
                break
            batch.cover(tp, msg.offset())
            self.consumed(tp, msg.offset())
            if note is None:  # someone else's record in the hold topic: not ours to send
                log.error("%s[%d]@%d: not a hold record (no %s header); skipped",
                          *tp, msg.offset(), HEADER)  # fmt: skip
                continue
            items = [note.item(msg)]
            if state.pipeline is not None:
                after = state.pipeline.after(note.after)
                items = state.pipeline.resume(after, note.source[1], items, now, aside)
            out.setdefault(note.source[1], []).extend(items)
        if aside.dropped:
            self.drop(state.name, aside.dropped, batch, now)
        if aside.deferred:
            self.park(batch, state.name, aside.deferred)
        if out:
            self.emit(state, out, now, batch)

    def tick(self, now: float) -> None:
        """Hold partitions whose next record is due read on."""
        for tp, due in list(self.waiting.items()):
            if due <= now:
                del self.waiting[tp]
                self.wake(tp)

    def assigned(self, tps: list[TP]) -> None:
        """Hold partitions this member reads from now on start unpaused."""
        for tp in tps:
            if tp[0] in self.topics:
                self.waiting.pop(tp, None)
                self.wake(tp)

    def forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self.waiting.pop(tp, None)


def _reporter(batch: Batch, route: str, topic: str) -> Callable[[Any, Any], None]:
    def reported(err: Any, msg: Any) -> None:
        if err is not None:
            log.error("%s: a record to hold did not land in %s: %s", route, topic, err)
            batch.fail(route, 1)
        batch.reported()

    return reported
