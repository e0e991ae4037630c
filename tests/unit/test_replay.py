"""Exactly-once with held records: the commit metadata that says which records beyond the
commit point were not done, and the replay that skips what was."""

from __future__ import annotations

from collections import Counter

import pytest

from streamchaos.bridge.replay import MAX_METADATA, Progress, Replay, decode, encode, output_id
from streamchaos.config import config_from_dict
from streamchaos.engine import Pipeline
from streamchaos.record import Injection, Item, Record
from tests.fakes import message


@pytest.mark.parametrize(
    "partial",
    [
        {},
        {100: Counter()},
        {100: Counter(), 101: Counter(), 102: Counter(), 110: Counter(["o", "3fa"])},
        {105: Counter(["o", "a1", "b2", "b2"]), 106: Counter(["c3"])},
        {o: Counter() for o in range(100, 5100)},
    ],
    ids=["nothing held", "one", "runs and counts", "counts", "an outage's backlog"],
)  # fmt: skip
def test_metadata_round_trips(partial):
    text = encode(100, 6000, partial)
    assert decode(100, text) == (6000, partial)
    assert len(encode(100, 6000, {o: Counter() for o in range(100, 5100)})) < 40  # one run


def test_metadata_of_another_tool_is_no_replay():
    assert decode(5, None) is None
    assert decode(5, "") is None
    assert decode(5, "some other tool's note") is None


def test_scattered_holds_fit_the_brokers_default_metadata_limit():
    """5 % of records held by a 1 s delay at 10,000 records a second on one partition."""
    held: dict[int, Counter[str]] = {100 + 20 * i: Counter() for i in range(500)}
    assert len(encode(100, 100 + 10_000, held)) < MAX_METADATA


def pipeline(*faults):
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "s.shadow", "faults": list(faults)}],
    }
    return Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, 7)


def test_a_replay_skips_done_records_and_what_a_held_one_produced():
    """Read again from 10: 10..19 were read before; 12 was held (none of its outputs out)
    and 15 had its original produced (a duplicate's, its copy held)."""
    pipe = pipeline({"type": "duplicate", "fraction": 1.0, "copies": 1})
    pipe.tick(0)
    msgs = [message(Record("src", 0, o, b"k", b"v%d" % o)) for o in range(10, 25)]
    replay = Replay(20, {12: Counter(), 15: Counter(["o"])})
    plan = replay.plan(pipe, 0, msgs, 0, len(msgs), 0.0)
    produced = {msgs[i].offset(): len(plan.outputs.get(i, [None])) for i in range(len(msgs))}
    assert {o: n for o, n in produced.items() if o < 20} == {
        10: 0, 11: 0, 12: 2, 13: 0, 14: 0, 15: 1, 16: 0, 17: 0, 18: 0, 19: 0
    }  # fmt: skip
    assert all(produced[o] == 2 for o in range(20, 25))  # past the replay: as usual
    assert plan.dropped == []


def copy_of(record, n):
    item = Item(record)
    item.injections.append(Injection("dup", "duplicate", "extra", {"copy": n}))
    return item


def test_progress_names_outputs_and_says_what_is_held():
    progress = Progress()
    tp, record = ("src", 0), Record("src", 0, 11, b"k", b"v")
    progress.wrote(tp, 10, "o")
    progress.wrote(tp, 11, "o")
    progress.wrote(tp, 11, output_id(copy_of(record, 1)))
    text = progress.metadata(tp, 11, 20, held=[11, 13])
    assert decode(11, text) == (
        20, {11: Counter(["o", output_id(copy_of(record, 1))]), 13: Counter()}
    )  # fmt: skip
    progress.resume(tp, 11, text)  # read again by the next owner
    replay = progress.replay(tp, 11)
    assert replay is not None and replay.done(12) and not replay.done(13)
    # its holds release in another order there: copy 2, copy 1, then the record itself
    taken = [progress.take(tp, it) for it in (copy_of(record, 2), copy_of(record, 1), Item(record))]
    assert taken == [True, False, False]
    assert progress.replay(tp, 20) is None  # read past it, nothing left to drop


def test_a_copy_is_named_the_same_released_on_time_or_early():
    record = Record("src", 0, 11, b"k", b"v")
    on_time = copy_of(record, 1)
    early = Item(record)
    early.injections.append(
        Injection("dup", "duplicate", "extra", {"copy": 1, "released_early": True})
    )
    assert output_id(on_time) == output_id(early) != output_id(copy_of(record, 2))


def test_outputs_of_one_name_are_counted():
    """Two copies may share a name (a second duplicate copies the record and the first's
    copy, and a copy keeps no injection of its parent): each one written is dropped once."""
    record = Record("src", 0, 11, b"k", b"v")
    twin = output_id(copy_of(record, 1))
    replay = Replay(12, {11: Counter([twin, twin])})
    assert [replay.take(copy_of(record, 1)) for _ in range(3)] == [False, False, True]


def test_a_drop_written_before_is_not_ledgered_again():
    progress = Progress()
    tp, item = ("src", 0), Item(Record("src", 0, 11, b"k", b"v"))
    assert progress.dropped("src", [item]) == [item]
    progress.resume(tp, 11, progress.metadata(tp, 11, 12, held=[11]))
    assert progress.dropped("src", [Item(Record("src", 0, 11, b"k", b"v"))]) == []


def test_a_commit_during_a_replay_carries_what_it_has_not_reached():
    """Read again from 10 up to 30, a commit when only 10..14 were read must still say
    that 15..29 were done but 20 (held, one output out): else a crash now repeats them."""
    progress = Progress()
    tp = ("src", 0)
    progress.resume(tp, 10, encode(10, 30, {12: Counter(), 20: Counter(["o"])}))
    text = progress.metadata(tp, 12, 15, held=[12])
    assert decode(12, text) == (30, {12: Counter(), 20: Counter(["o"])})


def test_an_original_that_passes_while_its_copies_are_held_counts_as_produced():
    """A spaced duplicate's original goes out as it came, with the passed-through records;
    the commit must count it, or the next owner produces it again."""
    pipe = pipeline({"type": "duplicate", "fraction": 1.0, "copies": 2, "spacing": "1s"})
    pipe.tick(0)
    msgs = [message(Record("src", 0, o, b"k", b"v")) for o in range(3)]
    plan = pipe.plan(0, msgs, 0, 3, 0.0)
    assert plan.outputs == {} and plan.passed == [0, 1, 2]
    progress = Progress()
    progress.passed(("src", 0), [m.offset() for m in msgs])
    assert decode(0, progress.metadata(("src", 0), 0, 3, pipe.held_offsets(0))) == (
        3, {0: Counter(["o"]), 1: Counter(["o"]), 2: Counter(["o"])}
    )  # fmt: skip


def test_outputs_of_a_held_record_in_another_records_place_are_dropped_too():
    """A reorder window released in the place of the record that filled it carries
    records of other offsets: one produced before must not go out again."""
    pipe = pipeline({"type": "reorder", "fraction": 1.0, "window": 3, "max_wait": "1h"})
    pipe.tick(0)
    msgs = [message(Record("src", 0, o, b"k", b"v%d" % o)) for o in range(10, 13)]
    replay = Replay(11, {10: Counter(["o"])})  # 10 was held, and had gone out once already
    plan = replay.plan(pipe, 0, msgs, 0, 3, 0.0)
    offsets = sorted(item.offset for items in plan.outputs.values() for item in items)
    assert offsets == [11, 12]  # 10's one output is not repeated; 11 and 12 are new
