"""Exactly-once with held records: the commit metadata that says which records beyond the
commit point were not done, and the replay that skips what was."""

from __future__ import annotations

import pytest

from streamchaos.bridge.replay import MAX_METADATA, Progress, Replay, decode, encode
from streamchaos.config import config_from_dict
from streamchaos.engine import Pipeline
from streamchaos.record import Record
from tests.fakes import message


@pytest.mark.parametrize(
    "partial",
    [{}, {100: 0}, {100: 0, 101: 0, 102: 0, 110: 2, 111: 0, 130: 0, 131: 0},
     {105: 3, 106: 1}, {o: 0 for o in range(100, 5100)}],
    ids=["nothing held", "one", "runs and counts", "counts", "an outage's backlog"],
)  # fmt: skip
def test_metadata_round_trips(partial):
    text = encode(100, 6000, partial)
    assert decode(100, text) == (6000, partial)
    assert len(encode(100, 6000, {o: 0 for o in range(100, 5100)})) < 40  # one run


def test_metadata_of_another_tool_is_no_replay():
    assert decode(5, None) is None
    assert decode(5, "") is None
    assert decode(5, "some other tool's note") is None


def test_scattered_holds_fit_the_brokers_default_metadata_limit():
    """5 % of records held by a 1 s delay at 10,000 records a second on one partition."""
    held = {100 + 20 * i: 0 for i in range(500)}
    assert len(encode(100, 100 + 10_000, held)) < MAX_METADATA


def pipeline(*faults):
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "s.shadow", "faults": list(faults)}],
    }
    return Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, 7)


def test_a_replay_skips_done_records_and_what_a_held_one_produced():
    """Read again from 10: 10..19 were read before; 12 was held (none of its outputs out)
    and 15 had one of its two outputs produced (a duplicate's original, its copy held)."""
    pipe = pipeline({"type": "duplicate", "fraction": 1.0, "copies": 1})
    pipe.tick(0)
    msgs = [message(Record("src", 0, o, b"k", b"v%d" % o)) for o in range(10, 25)]
    replay = Replay(20, {12: 0, 15: 1})
    plan = replay.plan(pipe, 0, msgs, 0, len(msgs), 0.0)
    produced = {msgs[i].offset(): len(plan.outputs.get(i, [None])) for i in range(len(msgs))}
    assert {o: n for o, n in produced.items() if o < 20} == {
        10: 0, 11: 0, 12: 2, 13: 0, 14: 0, 15: 1, 16: 0, 17: 0, 18: 0, 19: 0
    }  # fmt: skip
    assert all(produced[o] == 2 for o in range(20, 25))  # past the replay: as usual
    assert plan.dropped == []


def test_progress_counts_outputs_and_says_what_is_held():
    progress = Progress()
    tp = ("src", 0)
    for offset in (10, 11, 11, 12):
        progress.produced(tp, offset)
    text = progress.metadata(tp, 11, 20, held=[11, 13])
    assert decode(11, text) == (20, {11: 2, 13: 0})
    progress.resume(tp, 11, text)  # read again by the next owner
    replay = progress.replay(tp, 11)
    assert replay is not None and replay.done(12) and not replay.done(13)
    assert [replay.keep(11), replay.keep(11), replay.keep(11)] == [False, False, True]
    assert progress.replay(tp, 20) is None  # read past it, nothing left to drop


def test_a_commit_during_a_replay_carries_what_it_has_not_reached():
    """Read again from 10 up to 30, a commit when only 10..14 were read must still say
    that 15..29 were done but 20 (held, one output out): else a crash now repeats them."""
    progress = Progress()
    tp = ("src", 0)
    progress.resume(tp, 10, encode(10, 30, {12: 0, 20: 1}))
    text = progress.metadata(tp, 12, 15, held=[12])
    assert decode(12, text) == (30, {12: 0, 20: 1})


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
        3, {0: 1, 1: 1, 2: 1}
    )  # fmt: skip
