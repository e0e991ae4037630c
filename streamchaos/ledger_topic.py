"""The ledger's Kafka side: the outbox the bridge sends lines from, and reading a topic back.

Kept apart from ``streamchaos.ledger`` (the format: line shapes, writer, reader) because
it is transport, not format. Lines wait in an outbox until the bridge's loop calls
``send``: most are written from delivery callbacks, where ``produce`` must not wait for
room in a full queue. Each line can carry its own delivery callback, so the bridge keeps
a source offset uncommitted until its ground truth landed too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streamchaos.kafkatools import produce_with_room, read_all

log = logging.getLogger("streamchaos.ledger")

Delivery = Callable[[Any, Any], None]


class TopicOutbox:
    """Lines for the ledger topic (keyed by experiment), produced by ``send``."""

    def __init__(self, topic: str | None, producer: Any, key: bytes) -> None:
        self.topic = topic
        self.producer = producer if topic else None
        self._key = key
        self.outbox: list[tuple[bytes, Delivery]] = []
        self.failed = 0  # lines with no batch (episodes, plan changes...) the topic refused

    def _queue(self, line: str, on_delivery: Delivery | None) -> bool:
        """Queue a line for the topic; False when there is no topic to send it to."""
        if self.producer is None:
            return False
        self.outbox.append((line.encode(), on_delivery or self.delivered))
        return True

    def send(self, deadline: float | None = None) -> int:
        """Produce the outbox to the ledger topic (from the bridge's loop, never from a
        delivery callback), waiting out a full queue until ``deadline``
        (``time.monotonic()``; None: as long as it takes); what was not produced stays in
        the outbox. A line the client refuses is a failed delivery for its callback.
        Returns how many lines left the outbox."""
        sent = 0
        while self.outbox and self.producer is not None:
            outbox, self.outbox = self.outbox, []  # the polls below may queue more lines
            done = 0
            topic = self.topic or ""
            try:
                for value, callback in outbox:
                    if not produce_with_room(
                        self.producer,
                        topic,
                        value,
                        self._key,
                        deadline=deadline,
                        on_delivery=callback,
                    ):
                        break
                    done += 1
            finally:  # what was not handed over goes back, ahead of newer lines
                sent += done
                self.outbox[:0] = outbox[done:]
            if done < len(outbox):
                break
        return sent

    def delivered(self, err: Any, msg: Any) -> None:
        """Delivery report of a line with no callback of its own (an episode's)."""
        if err is not None:
            self.failed += 1
            log.error("ledger entry not delivered to %s: %s", self.topic, err)


def flush_all(producer: Any, outbox: TopicOutbox | None, timeout: float) -> int:
    """Flush ``producer`` until nothing is in flight, ledger lines the delivery reports it
    serves wrote to ``outbox`` included; returns what is left when ``timeout`` is over."""
    deadline = time.monotonic() + timeout
    while True:
        if outbox is not None:
            outbox.send(deadline)
        left = int(producer.flush(max(0.0, deadline - time.monotonic())))
        waiting = len(outbox.outbox) if outbox is not None else 0
        if left or not waiting or time.monotonic() >= deadline:
            return left + waiting


def topic_records(
    bootstrap: str, topic: str, timeout: float, experiment: str | None
) -> list[tuple[str, bytes]]:
    """``(topic[partition]@offset, value)`` of every record of a ledger topic, in order;
    only those keyed by ``experiment`` when given. A missing topic is a BridgeError."""
    key = experiment.encode() if experiment is not None else None
    return [
        (f"{topic}[{msg.partition()}]@{msg.offset()}", msg.value() or b"")
        for msg in read_all(bootstrap, topic, timeout, strict=True)
        if key is None or msg.key() == key
    ]
