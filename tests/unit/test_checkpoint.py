"""The commit point never passes an offset that has not fully landed; the commit
sequence keeps what the broker refused for the next time."""

from __future__ import annotations

from types import SimpleNamespace

import confluent_kafka as ck
from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.bridge.checkpoint import Checkpoint, OffsetTracker

TP = ("src", 0)


def consume(tracker, offsets, outputs_each=1):
    """A batch covering ``offsets`` that waits for ``outputs_each`` reports per offset."""
    batch = tracker.new_batch()
    for off in offsets:
        batch.cover(TP, off)
        tracker.consumed(TP, off)
        batch.expect(outputs_each)
    batch.seal()
    return batch


def report(batch, err=None):
    if err is not None:
        batch.fail("src", 1)
    batch.reported()


def test_commit_waits_for_every_report():
    tracker = OffsetTracker()
    batch = consume(tracker, range(10))
    assert tracker.commit_point(TP) == 0
    for _ in range(9):
        report(batch)
    assert tracker.commit_point(TP) == 0
    report(batch)
    assert tracker.commit_point(TP) == 10


def test_later_batch_cannot_overtake_earlier_one():
    tracker = OffsetTracker()
    first = consume(tracker, range(0, 5))
    second = consume(tracker, range(5, 10))
    for _ in range(5):
        report(second)
    assert tracker.commit_point(TP) == 0
    for _ in range(5):
        report(first)
    assert tracker.commit_point(TP) == 10


def test_failed_delivery_is_never_passed():
    tracker = OffsetTracker()
    batch = consume(tracker, range(3, 6))
    report(batch)
    report(batch, "MSG_SIZE_TOO_LARGE")
    report(batch)
    consume(tracker, range(6, 9), outputs_each=0)
    assert tracker.commit_point(TP) == 3
    assert tracker.failed_outputs == 1


def test_an_open_batch_holds_the_commit_point_until_sealed():
    """Reports may come while a batch is still being produced (a full queue is served
    meanwhile): it completes only once sealed."""
    tracker = OffsetTracker()
    batch = tracker.new_batch()
    batch.cover(TP, 0)
    tracker.consumed(TP, 4)
    batch.expect()
    report(batch)
    assert tracker.commit_point(TP) == 0 and batch.remaining == 0
    batch.seal()
    assert tracker.commit_point(TP) == 5
    other = ("src", 1)
    tracker.consumed(other, 3)
    assert tracker.commit_point(other) == 4


def test_held_offset_keeps_commit_behind_it():
    tracker = OffsetTracker()
    held = {TP: 2}
    tracker.held_floor = held.get
    consume(tracker, [0, 1, 3], outputs_each=0)
    assert tracker.commit_point(TP) == 2
    del held[TP]
    release = tracker.new_batch()
    release.cover(TP, 2)
    release.expect()
    release.seal()
    assert tracker.commit_point(TP) == 2
    report(release)
    assert tracker.commit_point(TP) == 4


def test_dropped_records_finish_at_once_and_lag_counts_uncommitted():
    tracker = OffsetTracker()
    consume(tracker, range(4), outputs_each=0)
    assert tracker.to_commit() == {TP: 4}
    assert tracker.lag(TP) == 4
    tracker.committed({TP: 4})
    assert tracker.lag(TP) == 0
    assert tracker.to_commit() == {}


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
    fail_at=st.one_of(st.none(), st.integers(min_value=0, max_value=39)),
)
def test_commit_point_is_below_every_unfinished_offset(sizes, order, fail_at):
    tracker = OffsetTracker()
    offset = 0
    acks = []  # (batch, offset) per output, delivered in random order
    for size in sizes:
        batch = tracker.new_batch()
        for _ in range(size):
            batch.cover(TP, offset)
            tracker.consumed(TP, offset)
            batch.expect()
            acks.append((batch, offset))
            offset += 1
        batch.seal()
    order.shuffle(acks)
    unfinished = {off for _, off in acks}
    failed = set()
    for i, (batch, off) in enumerate(acks):
        err = "boom" if i == fail_at else None
        report(batch, err)
        if err:
            failed.add(off)
        else:
            unfinished.discard(off)
        point = tracker.commit_point(TP)
        assert all(point <= o for o in unfinished | failed)
    if not failed and offset:
        assert tracker.commit_point(TP) == offset


class Consumer:
    """``commit`` as confluent-kafka answers it: the partitions, each with its error."""

    def __init__(self, refuse: set[int]) -> None:
        self.refuse, self.commits = refuse, []

    def commit(self, offsets, asynchronous):
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])
        refused = ck.KafkaError(ck.KafkaError.REBALANCE_IN_PROGRESS)
        return [
            SimpleNamespace(
                topic=tp.topic,
                partition=tp.partition,
                offset=tp.offset,
                error=refused if tp.partition in self.refuse else None,
            )
            for tp in offsets
        ]


def test_the_commit_sequence_retries_what_the_broker_refused():
    tracker, steps = OffsetTracker(), []
    consumer = Consumer(refuse={1})
    checkpoint = Checkpoint(
        tracker,
        consumer,
        serve=lambda: steps.append("serve"),
        flush=lambda: steps.append("flush") or 0,
        ledger_flush=lambda: steps.append("ledger"),
    )
    for part in (0, 1):
        consume(tracker, [0, 1], outputs_each=0)
        tracker.consumed(("src", part), 1)
    assert checkpoint.commit() == {("src", 0): 2}
    assert steps == ["serve", "ledger"]  # reports served, then the ledger file, then commit
    consumer.refuse = set()
    assert checkpoint.commit(land=True) == {("src", 1): 2}  # 0 is not committed again
    assert steps[2:] == ["flush", "ledger"]
    assert consumer.commits == [[(0, 2), (1, 2)], [(1, 2)]]
