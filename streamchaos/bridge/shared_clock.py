"""One experiment clock for every member of a group and every restart: its time zero, and
one writer of each route's episode lines (the wall clock, with a ledger topic).

Both live in a small compacted topic beside the ledger topic, ``<ledger topic>.clock``:

- ``zero/<experiment>/<member>``: a member's proposal of time zero. The first in the topic
  is the experiment's. A starting member reads the topic; when it finds none, it writes
  its own and reads again, so members that start together agree on the one written first,
  and a restart continues the schedules instead of starting them over.
- ``episode/<experiment>/<route>/<fault>``: the episode written last, ``{"window": k,
  "open": bool}``. A route's episode lines are written by the member that owns its
  partition 0. One that gets the partition reads what its predecessor wrote, writes what
  is missing (at the schedule's times), and carries on: each episode once, whoever wrote
  it. Under exactly-once the mark is in the transaction with the line; under
  at-least-once it is written once the line landed, so a crash can repeat a line, never
  lose one.

A member that stops ends a route's open episodes only when it reads all of the route's
partitions (no other member carries the faults on); otherwise the schedule, or the last
member, ends them.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streamchaos.bridge.checkpoint import TP
from streamchaos.bridge.topics import prepare_ledger_topic
from streamchaos.config import Config
from streamchaos.engine import EpisodeEvent, Pipeline, Stage
from streamchaos.errors import BridgeError
from streamchaos.kafkaconf import shadow_admin_conf
from streamchaos.kafkatools import produce_with_room, submit_topics

log = logging.getLogger(__name__)

SUFFIX = ".clock"
READ_TIMEOUT = 30.0


def clock_topic(ledger_topic: str) -> str:
    return ledger_topic + SUFFIX


@dataclass(slots=True)
class Mark:
    """The episode written last for a fault: its schedule window, and whether it is open."""

    window: int | None
    open: bool


class ClockTopic:
    """Reads and writes the clock topic (one partition, compacted)."""

    def __init__(self, name: str, experiment: str, conf: dict[str, Any]) -> None:
        self.name, self.experiment, self.conf = name, experiment, conf

    def prepare(self, admin: AdminClient, timeout: float = 30.0) -> None:
        config = {"cleanup.policy": "compact"}
        topic = NewTopic(self.name, num_partitions=1, config=config)
        submit_topics(admin, [topic], timeout, exist_ok=True)

    def read(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Committed records whose key starts with ``prefix``, in the topic's order."""
        consumer = Consumer(
            self.conf
            | {
                "group.id": f"streamchaos-clock-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.name, 0), timeout=READ_TIMEOUT
            )
            if high <= low:
                return
            consumer.assign([TopicPartition(self.name, 0, low)])
            deadline = time.monotonic() + READ_TIMEOUT
            while time.monotonic() < deadline:
                for msg in consumer.consume(500, 0.5):
                    err, offset, value = msg.error(), msg.offset() or 0, msg.value()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF:
                        if offset >= high:
                            return
                        continue
                    if err is not None:
                        raise BridgeError(f"{self.name}: {err.str()}")
                    key = (msg.key() or b"").decode("utf-8", "replace")
                    if key.startswith(prefix) and value:
                        yield key, json.loads(value)
                    if offset + 1 >= high:
                        return
            raise BridgeError(f"could not read the clock topic {self.name} in {READ_TIMEOUT}s")
        finally:
            consumer.close()

    def time_zero(self, now_ms: int) -> tuple[int, bool]:
        """The experiment's time zero (epoch ms), and whether it was there before."""
        prefix = f"zero/{self.experiment}/"
        found = next(self.read(prefix), None)
        if found is not None:
            return int(found[1]["at"]), True
        member = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        producer = Producer(self.conf | {"enable.idempotence": True})
        value = json.dumps({"at": now_ms, "member": member})
        producer.produce(self.name, value.encode(), (prefix + member).encode())
        if producer.flush(READ_TIMEOUT):
            raise BridgeError(f"could not write time zero to {self.name}")
        first = next(self.read(prefix), None)  # another member's, written a moment before?
        if first is None:
            raise BridgeError(f"time zero written to {self.name} cannot be read back")
        return int(first[1]["at"]), first[1].get("member") != member

    def marks(self, route: str) -> dict[str, Mark]:
        """The episode each of ``route``'s faults wrote last."""
        prefix = f"episode/{self.experiment}/{route}/"
        return {
            key[len(prefix) :]: Mark(value.get("window"), bool(value.get("open")))
            for key, value in self.read(prefix)
        }


class Scribe:
    """Which episode lines this member writes, and the marks that say what was written."""

    def __init__(self, topic: ClockTopic, producer: Any, exactly_once: bool) -> None:
        self.topic, self.producer, self.exactly_once = topic, producer, exactly_once
        self.writes: dict[str, dict[str, Mark]] = {}  # routes whose partition 0 is here
        self.parts: dict[str, set[int]] = {}  # the partitions of each route read here
        self.pending: list[tuple[bytes, bytes]] = []  # marks whose lines landed

    def assigned(self, tps: list[TP], pipelines: dict[str, Pipeline], now: float) -> list[Any]:
        """Partitions came: of a route whose partition 0 is one, the marks its last writer
        left, and the episode lines missing from them (``(route, event)``)."""
        out = []
        for topic, part in tps:
            self.parts.setdefault(topic, set()).add(part)
            pipeline = pipelines.get(topic)
            if part == 0 and pipeline is not None:
                marks = self.writes[topic] = self.topic.marks(topic)
                log.info("%s: episodes written here (its partition 0 is)", topic)
                for stage in pipeline.stages:
                    out += [(topic, ev) for ev in missing(stage, marks.get(stage.name), now)]
        return out

    def revoked(self, tps: list[TP]) -> None:
        """Partitions went: marks whose lines landed go out first, for the next writer."""
        for topic, part in tps:
            self.parts.get(topic, set()).discard(part)
            if part == 0 and self.writes.pop(topic, None) is not None:
                log.info("%s: episodes written here no more", topic)
        self.send(flush=True)

    def alone(self, route: str, partitions: int) -> bool:
        """Whether this member reads every partition of ``route`` (ends its episodes)."""
        return len(self.parts.get(route, ())) >= partitions

    def take(self, route: str, stage: Stage, kind: str, window: int | None) -> Mark | None:
        """The mark to leave when a line of ``stage``'s episode (of schedule ``window``,
        None: the stage's last) is written here; None: not written here (another member
        writes the route, or the line is written already)."""
        marks = self.writes.get(route)
        if marks is None:
            return None
        window = window if window is not None else stage.window
        mark = marks.get(stage.name)
        if kind == "episode_start":
            if mark is not None and mark.open and mark.window == window:
                return None
            return Mark(window, True)
        if mark is None or not mark.open:
            return None
        return Mark(mark.window, False)

    def wrote(self, route: str, fault: str, mark: Mark) -> Any:
        """The line was handed to the ledger: the mark follows, in its transaction, or
        (at-least-once) by the delivery callback returned, once the line landed."""
        self.writes.get(route, {})[fault] = mark
        key = f"episode/{self.topic.experiment}/{route}/{fault}".encode()
        value = json.dumps({"window": mark.window, "open": mark.open}).encode()
        if self.exactly_once:
            produce_with_room(self.producer, self.topic.name, value, key)
            return None

        def landed(err: Any, msg: Any) -> None:
            if err is None:
                self.pending.append((key, value))

        return landed

    def send(self, flush: bool = False) -> None:
        """Marks of landed lines, to the clock topic (from the loop, not a callback)."""
        pending, self.pending = self.pending, []
        for key, value in pending:
            produce_with_room(self.producer, self.topic.name, value, key)
        if flush and pending and not self.exactly_once:
            self.producer.flush(READ_TIMEOUT)


def missing(stage: Stage, mark: Mark | None, now: float) -> list[EpisodeEvent]:
    """The lines a new writer owes for ``stage``: its predecessor's open episode ended
    (at the window's end), or this one's started (at the window's start), as the
    schedule says; lines of what the schedule made carry its time as ``at``."""
    out = []
    current = stage.window if stage.in_episode else None
    if mark is not None and mark.open and (current is None or mark.window != current):
        bound = _bound(stage, mark.window, 1)
        bound = bound if bound is not None and bound <= now else None  # not the schedule's
        at = bound if bound is not None else now
        out.append(EpisodeEvent(stage, "episode_end", at, bound=bound, window=mark.window))
    if stage.in_episode and not (mark is not None and mark.open and mark.window == current):
        again = mark is not None and mark.window == current  # a start after a pause
        bound = None if again else _bound(stage, current, 0)
        at = bound if bound is not None else now
        out.append(EpisodeEvent(stage, "episode_start", at, bound=bound, window=current))
    return out


def _bound(stage: Stage, window: int | None, side: int) -> float | None:
    bounds = stage.config.schedule.window(window) if window is not None else None
    return None if bounds is None else stage.origin + bounds[side]


def describe_zero(zero_ms: int, before: bool, topic: str) -> str:
    when = datetime.fromtimestamp(zero_ms / 1000, UTC).isoformat()
    if not before:
        return f"clock: time zero is now, {when} (in {topic})"
    ago = time.time() - zero_ms / 1000
    return (
        f"clock: time zero {when}, {ago:.0f}s ago, from {topic}: the schedules continue "
        "from there (a fresh start: another experiment name, or start_at)"
    )


def open_clock(cfg: Config, admin: AdminClient, producer: Any) -> tuple[Config, Scribe | None]:
    """The ledger topic (``admin``'s cluster; made when missing) and the experiment's
    shared clock, where it has one (the wall clock, a ledger topic): ``cfg`` with its
    time zero as ``start_at``, and the scribe of its episodes."""
    if cfg.ledger.topic:
        prepare_ledger_topic(admin, cfg.ledger.topic)
    if cfg.clock != "wall" or not cfg.ledger.topic:
        return cfg, None
    topic = ClockTopic(clock_topic(cfg.ledger.topic), cfg.experiment, shadow_admin_conf(cfg))
    topic.prepare(admin)
    if cfg.start_at is None:
        zero, before = topic.time_zero(round(time.time() * 1000))
        log.info("%s", describe_zero(zero, before, topic.name))
        cfg = cfg.model_copy(update={"start_at": datetime.fromtimestamp(zero / 1000, UTC)})
    return cfg, Scribe(topic, producer, cfg.delivery == "exactly-once")
