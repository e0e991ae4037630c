"""The commit point never passes an offset that has not fully landed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.bridge.offsets import OffsetTracker

TP = ("src", 0)


def consume(tracker, offsets, outputs_each=1):
    batch = tracker.new_batch()
    for off in offsets:
        batch.cover(TP, off)
        tracker.consumed(TP, off)
        for _ in range(outputs_each):
            batch.add_outputs("t", 1)
    batch.seal()
    return batch


def test_commit_waits_for_every_ack():
    tracker = OffsetTracker()
    batch = consume(tracker, range(10))
    assert tracker.commit_point(TP) == 0
    for _ in range(9):
        batch.on_delivery(None, None)
    assert tracker.commit_point(TP) == 0
    batch.on_delivery(None, None)
    assert tracker.commit_point(TP) == 10


def test_later_batch_cannot_overtake_earlier_one():
    tracker = OffsetTracker()
    first = consume(tracker, range(0, 5))
    second = consume(tracker, range(5, 10))
    for _ in range(5):
        second.on_delivery(None, None)
    assert tracker.commit_point(TP) == 0
    for _ in range(5):
        first.on_delivery(None, None)
    assert tracker.commit_point(TP) == 10


def test_failed_delivery_is_never_passed():
    tracker = OffsetTracker()
    batch = consume(tracker, range(3, 6))
    batch.on_delivery(None, None)
    batch.on_delivery("MSG_SIZE_TOO_LARGE", None)
    batch.on_delivery(None, None)
    consume(tracker, range(6, 9), outputs_each=0)
    assert tracker.commit_point(TP) == 3
    assert tracker.failed_outputs == 1


def test_a_flush_that_empties_the_producer_completes_every_sealed_batch():
    """Without success reports, only failures arrive; a flush that leaves nothing in
    flight is what says the rest landed (``all_landed``). A batch still being filled
    (not sealed) stays pending, and a reported failure is still never passed."""
    tracker = OffsetTracker()
    consume(tracker, range(0, 5))
    failing = consume(tracker, range(5, 8))
    failing.on_delivery("MSG_SIZE_TOO_LARGE", None)  # the one report that comes
    open_batch = tracker.new_batch()
    open_batch.cover(TP, 8)
    tracker.consumed(TP, 8)
    open_batch.add_outputs("t", 1)
    assert tracker.commit_point(TP) == 0
    tracker.all_landed()
    assert tracker.commit_point(TP) == 5  # the failing batch's low
    assert tracker.failed_outputs == 1
    assert tracker.in_flight() == 1  # the open batch's output: not taken for landed
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
    release.add_outputs("t", 1)
    release.seal()
    assert tracker.commit_point(TP) == 2
    release.on_delivery(None, None)
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
            batch.add_outputs("t", 1)
            acks.append((batch, offset))
            offset += 1
        batch.seal()
    order.shuffle(acks)
    unfinished = {off for _, off in acks}
    failed = set()
    for i, (batch, off) in enumerate(acks):
        err = "boom" if i == fail_at else None
        batch.on_delivery(err, None)
        if err:
            failed.add(off)
        else:
            unfinished.discard(off)
        point = tracker.commit_point(TP)
        assert all(point <= o for o in unfinished | failed)
    if not failed and offset:
        assert tracker.commit_point(TP) == offset
