"""Small Kafka helpers shared by ``audit``, the bridge, the benchmarks and the test fixtures.

Every loop here is bounded by a deadline; nothing waits forever on a broker.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streamchaos.errors import BridgeError

log = logging.getLogger(__name__)


class Rejected:
    """Stands in for the message of a delivery report when ``produce`` itself refused
    (a full queue is waited out; this is a record the client will never send)."""

    def __init__(self, topic: str, partition: int) -> None:
        self._topic, self._partition = topic, partition

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return -1


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    timeout: float = 30.0,
    config: dict[str, str] | None = None,
    exist_ok: bool = False,
) -> None:
    """Create topics and wait until metadata shows them; ``exist_ok``: keep existing ones."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(n, num_partitions=partitions, config=config or {}) for n in names]
    submit_topics(admin, topics, timeout, exist_ok)
    wait_for_topics(bootstrap, [t.topic for t in topics], timeout)


def submit_topics(admin: AdminClient, topics: list[Any], timeout: float, exist_ok: bool) -> None:
    """Have the cluster create ``topics`` (``NewTopic``s); one that is already there is an
    error unless ``exist_ok``. Does not wait for metadata to show them."""
    for name, fut in admin.create_topics(topics, operation_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exist_ok and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BridgeError(f"cannot create topic {name!r}: {exc.args[0]}") from exc


def wait_for_topics(bootstrap: str, names: list[str], timeout: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = admin.list_topics(timeout=timeout)
        if all(n in meta.topics and meta.topics[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise BridgeError(f"topics not visible after {timeout}s: {names}")


def delete_topics(bootstrap: str, names: Iterable[str], timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.delete_topics(names, operation_timeout=timeout).values():
        with contextlib.suppress(KafkaException):  # already gone
            fut.result(timeout=timeout)


def partitions_of(bootstrap: str, topic: str, timeout: float = 10.0) -> int:
    # asking for one topic's metadata auto-creates it unless told not to (librdkafka's
    # default for non-consumers): a mistyped name must be an error, not a new topic
    admin = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    meta = admin.list_topics(topic, timeout=timeout)
    tmeta = meta.topics.get(topic)
    if tmeta is None or tmeta.error is not None:
        raise BridgeError(f"topic {topic!r} does not exist")
    return len(tmeta.partitions)


def end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """High watermark per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("probe")})
    try:
        out = {}
        for p in range(partitions_of(bootstrap, topic, timeout)):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            out[p] = high
        return out
    finally:
        consumer.close()


def committed_offsets(
    bootstrap: str, group: str, topic: str, timeout: float = 10.0
) -> dict[int, int]:
    """Committed offset per partition of ``topic`` for ``group`` (-1001 = none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions_of(bootstrap, topic, timeout))]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=timeout)}
    finally:
        consumer.close()


def produce_with_room(
    producer: Any,
    topic: str,
    value: bytes | None = None,
    key: bytes | None = None,
    *,
    deadline: float | None = None,
    **kwargs: Any,
) -> bool:
    """``produce``, serving delivery reports while the local queue is full; False when the
    queue was still full at ``deadline`` (``time.monotonic()``). A record the client refuses
    outright (larger than ``message.max.bytes``…) is a failed delivery for its
    ``on_delivery`` callback, as a broker's refusal would be; without one, it raises."""
    while True:
        try:
            producer.produce(topic, value, key, **kwargs)
            return True
        except BufferError:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            producer.poll(0.05)
        except KafkaException as exc:
            callback = kwargs.get("on_delivery")
            if callback is None:
                raise
            callback(exc.args[0], Rejected(topic, kwargs.get("partition", -1)))
            return True


def produce_all(bootstrap: str, records: Iterable[dict[str, Any]], timeout: float = 60.0) -> int:
    """Produce dicts of ``produce()`` keyword arguments; raise if any delivery fails."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    count = 0
    for rec in records:
        produce_with_room(producer, on_delivery=on_delivery, **rec)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    left = producer.flush(timeout)
    if left or errors:
        raise BridgeError(f"produce failed: {left} undelivered, errors: {errors[:3]}")
    return count


def read_all(
    bootstrap: str,
    topic: str,
    timeout: float = 30.0,
    expect: int | None = None,
    strict: bool = False,
) -> list[Any]:
    """Every record of ``topic`` from the beginning up to its current end offsets
    (committed records only: a partition's end may be a transaction marker, which the
    partition's end-of-file event passes).

    With ``expect``, keeps reading (until ``timeout``) until at least that many arrived.
    ``strict``: not reaching the end offsets in time is a BridgeError, not a short list.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("reader"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    try:
        return list(_drain(consumer, bootstrap, topic, timeout, expect, strict))
    finally:
        consumer.close()


def _drain(
    consumer: Any, bootstrap: str, topic: str, timeout: float, expect: int | None, strict: bool
) -> Iterator[Any]:
    deadline = time.monotonic() + timeout
    ends = end_offsets(bootstrap, topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    got = 0
    position = dict.fromkeys(ends, 0)
    while time.monotonic() < deadline:
        done = all(position[p] >= ends[p] for p in ends)
        if done and (expect is None or got >= expect):
            return
        if done:  # more may still be on the way
            ends = end_offsets(bootstrap, topic)
        for msg in consumer.consume(1000, 0.2):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:  # past markers too
                    position[msg.partition()] = max(position[msg.partition()], msg.offset())
                continue
            position[msg.partition()] = msg.offset() + 1
            got += 1
            yield msg
    if expect is not None and got < expect:
        raise BridgeError(f"read {got} of {expect} expected records from {topic} in {timeout}s")
    if strict and any(position[p] < ends[p] for p in ends):
        raise BridgeError(f"could not read {topic} to its end in {timeout}s")
