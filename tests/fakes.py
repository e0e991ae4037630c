"""Stand-ins for confluent-kafka in unit tests of pure logic (integration tests use a real
broker): a producer that keeps what it is given, and messages made from records."""

from __future__ import annotations

from typing import Any

import confluent_kafka as ck

from streamchaos.codec import AvroCodec
from streamchaos.record import Record


class PatchOnly(AvroCodec):
    """A codec for faults that must rewrite numbers in the Avro bytes, never decode."""

    def decode(self, data: bytes | None) -> Any:
        raise AssertionError("decoded: the byte patch was not used")


class Producer:
    """Keeps what is produced per partition, as (key, value, headers, timestamp); ``poll``
    reports deliveries, the shadow offset being the place in the partition, for records
    produced with a callback. ``fail_topic``: every record to it fails. ``lose``: values
    that vanish without a word (as librdkafka's idempotent producer skips timed-out records
    that were never sent): the records after them land one offset lower."""

    def __init__(self, fail_topic: str | None = None, lose: set[bytes] | None = None) -> None:
        self.out: dict[int, list[tuple[Any, ...]]] = {}
        self._queued: list[tuple[Any, ...]] = []
        self.fail_topic, self.lose = fail_topic, lose or set()

    def produce(  # as confluent-kafka takes them: positionally (the hot loop) or by name
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Any = None,
        on_delivery: Any = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        callback = callback or on_delivery
        part = max(partition, 0)
        out = self.out.setdefault(part, [])
        if value not in self.lose:
            out.append((key, value, tuple(headers or ()), timestamp))
        if callback is not None:
            self._queued.append((callback, topic, part, len(out) - 1))

    def poll(self, timeout: float = 0) -> int:
        queued, self._queued = self._queued, []
        for callback, topic, partition, offset in queued:
            fails = topic == self.fail_topic
            err = ck.KafkaError(ck.KafkaError.MSG_SIZE_TOO_LARGE) if fails else None
            callback(err, ck.Message(topic=topic, partition=partition, offset=offset))
        return len(queued)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


def message(record: Record) -> Any:
    """The consumed message a record came from."""
    return ck.Message(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers) or None,
        timestamp=(1, record.timestamp) if record.timestamp else (0, 0),
    )
