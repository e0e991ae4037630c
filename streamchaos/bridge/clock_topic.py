"""The clock topic beside the ledger topic, ``<ledger topic>.clock`` (one partition,
compacted): the experiment's time zero and the marks of the episodes written
(``shared_clock.py`` says what they are for). Reads wait for the transactions open there,
so a mark is read once its line's transaction committed."""

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

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streamchaos.errors import BridgeError

log = logging.getLogger(__name__)

READ_TIMEOUT = 30.0


@dataclass(slots=True)
class Mark:
    """The episode written last for a fault: its schedule window, whether it is open, and
    whether a detection stopped the fault (for the rest of the run)."""

    window: int | None
    open: bool
    stopped: bool = False


class ClockTopic:
    """Reads and writes the clock topic (one partition, compacted)."""

    def __init__(self, name: str, scope: str, conf: dict[str, Any]) -> None:
        """``scope``: ``<experiment>/<group id>``, one run of the experiment (members and
        restarts share the group; a new group is a new run, with a new time zero)."""
        self.name, self.scope, self.conf = name, scope, conf

    def _ends(self, conf: dict[str, Any]) -> tuple[int, int]:
        """The partition's low and high watermarks (a read_committed client's high one
        would be the last stable offset); a partition not known yet is asked again."""
        ends = Consumer(conf | {"isolation.level": "read_uncommitted"})
        deadline = time.monotonic() + READ_TIMEOUT
        try:
            while True:
                try:
                    low, high = ends.get_watermark_offsets(
                        TopicPartition(self.name, 0), timeout=READ_TIMEOUT
                    )
                    return low, high
                except KafkaException as exc:
                    if time.monotonic() > deadline:
                        raise BridgeError(f"{self.name}: {exc.args[0]}") from exc
                    time.sleep(0.2)
        finally:
            ends.close()

    def read(self, prefix: str, strict: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        """Committed records whose key starts with ``prefix``, in the topic's order, up to
        the topic's end: transactions still open there (a member's commit interval, or a
        crashed member's until it times out) are waited for. Not ``strict``: what could
        be read in ``READ_TIMEOUT``, with a warning."""
        conf = self.conf | {"group.id": f"streamchaos-clock-{uuid.uuid4().hex}"}
        conf |= {"enable.auto.commit": False, "enable.partition.eof": True}
        low, high = self._ends(conf)
        if high <= low:
            return
        consumer = Consumer(conf | {"isolation.level": "read_committed"})
        try:
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
                        try:
                            yield key, json.loads(value)
                        except ValueError:
                            log.warning("%s: record %d is not JSON, skipped", self.name, offset)
                    if offset + 1 >= high:
                        return
            if strict:
                raise BridgeError(f"could not read {self.name} to its end in {READ_TIMEOUT}s")
            log.warning(
                "%s: not read to its end in %ss: an episode line may be written twice",
                self.name,
                READ_TIMEOUT,
            )
        finally:
            consumer.close()

    def time_zero(self, now_ms: int) -> tuple[int, bool]:
        """The experiment's time zero (epoch ms), and whether it was there before."""
        prefix = f"zero/{self.scope}/"
        found = _zero(next(self.read(prefix), None))
        if found is not None:
            return found, True
        member = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        producer = Producer(self.conf | {"enable.idempotence": True})
        value = json.dumps({"at": now_ms, "member": member})
        producer.produce(self.name, value.encode(), (prefix + member).encode())
        if producer.flush(READ_TIMEOUT):
            raise BridgeError(f"could not write time zero to {self.name}")
        first = next(self.read(prefix), None)  # another member's, written a moment before?
        zero = _zero(first)
        if first is None or zero is None:
            raise BridgeError(f"time zero written to {self.name} cannot be read back")
        return zero, first[1].get("member") != member

    def mark_record(self, route: str, fault: str, mark: Mark) -> tuple[bytes, bytes]:
        """The key and value that keep ``mark`` (``marks`` reads them back)."""
        key = f"episode/{self.scope}/{route}/{fault}".encode()
        value = {"window": mark.window, "open": mark.open, "stopped": mark.stopped}
        return key, json.dumps(value).encode()

    def marks(self) -> dict[str, dict[str, Mark]]:
        """The episode each fault of each route wrote last: route → fault → mark."""
        prefix = f"episode/{self.scope}/"
        out: dict[str, dict[str, Mark]] = {}
        for key, value in self.read(prefix, strict=False):
            route, _, fault = key[len(prefix) :].partition("/")  # a topic has no "/"
            window = value.get("window")
            window = window if isinstance(window, int) else None
            mark = Mark(window, bool(value.get("open")), bool(value.get("stopped")))
            out.setdefault(route, {})[fault] = mark
        return out


def _zero(found: tuple[str, dict[str, Any]] | None) -> int | None:
    """The time zero a ``zero/`` record proposes (None: none, or not a number)."""
    at = found[1].get("at") if found is not None else None
    return at if isinstance(at, int) else None


def describe_zero(zero_ms: int, before: bool, topic: str) -> str:
    when = datetime.fromtimestamp(zero_ms / 1000, UTC).isoformat()
    if not before:
        return f"clock: time zero is now, {when} (in {topic})"
    ago = time.time() - zero_ms / 1000
    return (
        f"clock: time zero {when}, {ago:.0f}s ago, from {topic}: the schedules continue "
        "from there (a fresh start: another consumer group or experiment name, or start_at)"
    )
