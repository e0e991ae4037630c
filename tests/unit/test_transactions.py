"""The exactly-once commit sequence with fake clients: what it commits, when it releases
holds to fit the metadata, when it aborts, and a retriable commit error."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamchaos.bridge.checkpoint import OffsetTracker
from streamchaos.bridge.replay import MAX_METADATA, decode
from streamchaos.bridge.transactions import Transactions
from streamchaos.errors import BridgeError
from streamchaos.ledger import Ledger

TP = ("src", 0)


class FakeProducer:
    def __init__(self, commit_errors: list[KafkaError] | None = None) -> None:
        self.calls: list[str] = []
        self.offsets: list[Any] = []
        self.commit_errors = commit_errors or []

    def poll(self, timeout: float = 0) -> int:
        return 0

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.offsets = offsets

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")
        if self.commit_errors:
            raise KafkaException(self.commit_errors.pop(0))

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")


def setup(held: list[int], producer: FakeProducer) -> tuple[Transactions, Any]:
    """A partition read up to 10,000 with ``held`` held by its faults."""
    tracker = OffsetTracker()
    tracker.consumed(TP, 9_999)
    pipeline = SimpleNamespace(held_offsets=lambda part: list(held))
    released: list[Any] = []

    def release(tps: Any, now: float) -> int:
        released.append(tps)
        held.clear()
        return 0

    fwd = SimpleNamespace(
        routes={"src": SimpleNamespace(pipeline=pipeline)},
        journal=SimpleNamespace(epoch=0.0),
        release=release,
    )
    tracker.held_floor = lambda tp: min(held) if held else None
    consumer = SimpleNamespace(consumer_group_metadata=lambda: "group")
    tx = Transactions(tracker, consumer, producer, lambda: 0, Ledger("e", None, None), fwd, 5.0)
    return tx, released


def test_the_commit_says_which_records_beyond_its_point_are_held():
    producer = FakeProducer()
    tx, released = setup([200, 300, 301], producer)
    assert tx.commit() == {TP: 200}
    [offset] = producer.offsets
    assert (offset.offset, decode(200, offset.metadata)) == (200, (10_000, {
        200: {}, 300: {}, 301: {}}))  # fmt: skip
    assert released == [] and producer.calls == ["commit", "begin"]


def test_holds_that_would_not_fit_the_metadata_are_released_first():
    producer = FakeProducer()
    tx, released = setup(list(range(100, 10_000, 7)), producer)  # ~1,400 scattered holds
    assert tx.commit() == {TP: 10_000}
    [offset] = producer.offsets
    assert released == [[TP]]
    assert len(offset.metadata) <= MAX_METADATA
    assert decode(10_000, offset.metadata) == (10_000, {})


def test_a_failed_record_aborts_the_transaction_and_stops_the_bridge():
    producer = FakeProducer()
    tx, _ = setup([], producer)
    tx.tracker.failed_outputs = 1
    with pytest.raises(BridgeError, match="refused or not delivered"):
        tx.commit()
    assert producer.calls == ["abort", "begin"]
    assert tx.commit() == {}  # nothing commits any more


def test_a_retriable_commit_error_is_retried_in_place():
    retriable = KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True)
    producer = FakeProducer([retriable])
    tx, _ = setup([], producer)
    assert tx.commit() == {TP: 10_000}
    assert producer.calls == ["commit", "commit", "begin"]
