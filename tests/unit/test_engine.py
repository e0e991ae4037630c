"""Selection, schedules, the stage pipeline and each fault's timing, with a fake clock."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamchaos.config import config_from_dict
from streamchaos.engine import Pipeline
from streamchaos.faults.actions import HOLD, KEEP, Extra, Hold, Replace
from streamchaos.faults.delay import Delay
from streamchaos.faults.duplicate import Duplicate
from streamchaos.faults.hold import HoldBuffer
from streamchaos.faults.outage import Outage
from streamchaos.faults.picks import picks_of
from streamchaos.faults.reorder import Reorder
from streamchaos.faults.stale_replay import StaleReplay
from streamchaos.record import Item, Record
from streamchaos.schedule import Schedule
from streamchaos.selection import base_seed, uniform, uniforms
from tests.fakes import message


def rec(offset, key=b"k", partition=0, ts=0):
    return Record("src", partition, offset, key, b"v%d" % offset, (), ts)


def engine(*faults, seed=7):
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "src.shadow", "faults": list(faults)}],
    }
    return Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, seed)


def process(eng, records, now):
    """What each record (one partition, consecutive offsets) becomes: its outputs, in
    order; [] when it was held or dropped."""
    msgs = [message(r) for r in records]
    plan = eng.plan(records[0].partition, msgs, 0, len(msgs), now)
    return [plan.outputs.get(i, [Item(r)]) for i, r in enumerate(records)]


def one(eng, record, now):
    return process(eng, [record], now)[0]


def released(eng, now):
    """What holding stages release at ``now``, all partitions."""
    return [item for items in eng.due(now).items.values() for item in items]


def test_vector_and_scalar_draws_agree():
    base = base_seed(7, "delay", "src", 0)
    assert np.allclose(uniforms(base, 100, 50), [uniform(base, 100 + i) for i in range(50)])


def test_fraction_is_realised_within_binomial_tolerance():
    base = base_seed(7, "f", "src", 0)
    n, p = 100_000, 0.1
    hits = int((uniforms(base, 0, n) < p).sum())
    assert abs(hits - n * p) < 4 * math.sqrt(n * p * (1 - p))


def test_key_mode_selects_whole_cohorts():
    eng = engine({"type": "drop", "fraction": 0.5, "select": "key"})
    eng.tick(0)
    dropped: dict[bytes, set[bool]] = {}
    records = [rec(i, b"user-%d" % (i % 20)) for i in range(400)]
    for r, out in zip(records, process(eng, records, 0), strict=True):
        dropped.setdefault(r.key, set()).add(out == [])
    assert all(len(v) == 1 for v in dropped.values())
    assert 3 <= sum(v == {True} for v in dropped.values()) <= 17


def test_hits_of_a_batch_match_per_record_selection():
    vectorised, scalar = (
        engine({"type": "drop", "fraction": 0.2}),
        engine({"type": "drop", "fraction": 0.2}),
    )
    vectorised.tick(0)
    scalar.tick(0)
    hits = vectorised.stages[0].hits(0, 1000, 500)
    chosen = {i for i in range(1000, 1500) if one(scalar, rec(i), 0) == []}
    assert hits == sorted(chosen) and 60 < len(hits) < 140
    batch = process(vectorised, [rec(i) for i in range(1000, 1500)], 0)
    assert {1000 + i for i, out in enumerate(batch) if out == []} == chosen


def test_hits_from_the_draw_window_equal_fresh_draws():
    """Ranges inside the kept window, across its end, after a probability change, while
    it changes every tick (a ramp), and once it holds."""
    eng = engine({"type": "drop", "fraction": 0.2, "schedule": {"shape": "linear", "ramp": 10}})
    steps = [(5, 0, 1000), (5, 1000, 1000), (6, 3500, 1000), (7, 10, 20), (7, 30, 40)]
    steps += [(now, 100 * now, 100) for now in (8, 8, 9, 9, 9, 10, 12, 12, 13)]  # then p holds
    for now, first, count in steps:
        eng.tick(now)
        p = 0.2 * eng.stages[0].intensity
        base = eng.stages[0].base(0)
        fresh = [o for o in range(first, first + count) if uniform(base, o) < p]
        assert eng.stages[0].hits(0, first, count) == fresh


def test_intensity_change_invalidates_cached_candidates():
    eng = engine({"type": "drop", "fraction": 1.0, "schedule": {"duration": 10}})
    eng.tick(0)
    assert len(eng.stages[0].hits(0, 0, 100)) == 100
    eng.tick(10)
    assert one(eng, rec(5), 10) != []


@pytest.mark.parametrize(
    ("schedule", "points"),
    [
        ({"start": 10}, {9.9: 0, 10: 1, 1e6: 1}),
        ({"start": 10, "duration": 5}, {14.9: 1, 15: 0}),
        ({"shape": "linear", "ramp": 10}, {0: 0, 5: 0.5, 10: 1, 20: 1}),
        ({"shape": "sigmoid", "ramp": 10}, {0: 0.12, 5: 0.5, 10: 0.88}),
        ({"every": 10, "on": 2}, {0: 1, 1.9: 1, 2: 0, 9.9: 0, 10: 1, 12.5: 0}),
    ],
)
def test_schedule_shapes(schedule, points):
    sched = Schedule(**schedule)
    for t, want in points.items():
        assert sched.intensity(t) == pytest.approx(want, abs=0.005), t


def test_schedule_rejects_half_recurring():
    with pytest.raises(ValueError):
        Schedule(every=10)


def test_linear_ramp_scales_selection_probability():
    eng = engine({"type": "drop", "fraction": 1.0, "schedule": {"shape": "linear", "ramp": 100}})
    eng.tick(25)
    dropped = sum(out == [] for out in process(eng, [rec(i) for i in range(4000)], 25))
    assert abs(dropped / 4000 - 0.25) < 0.03


def seeded(records):
    return picks_of(records, lambda offsets: [o * 7919 for o in offsets])


def test_delay_holds_until_due_and_caps():
    f = Delay(Delay.Config(delay=5, distribution="exponential", cap=2), random.Random(1))
    assert f.act(seeded([rec(i) for i in range(50)]), 0.0) == [HOLD] * 50
    assert f.held() == 50 and f.oldest_held() == 0
    early, capped = f.due(1.99), f.due(2.0)
    assert all(r.injection.detail["delay_ms"] <= 1990 for r in early)
    assert capped and all(1990 < r.injection.detail["delay_ms"] <= 2000 for r in capped)
    assert len(early) + len(capped) == 50 and f.held() == 0


def test_delay_limit_releases_early_never_drops():
    f = Delay(Delay.Config(delay=10, max_held=3), random.Random(1))
    actions = [a for i in range(5) for a in f.act(picks_of([rec(i)]), float(i))]
    early = [r for a in actions if isinstance(a, Hold) for r in a.released]
    assert [r.item.record.offset for r in early] == [0, 1]
    assert all(r.injection.detail["released_early"] for r in early)
    assert f.held() == 3


@pytest.mark.parametrize("ordered", [True, False])
def test_hold_buffer_releases_by_time_whatever_the_push_order(ordered):
    """``ordered`` (a fixed delay) serves a queue; a push out of order must not break it."""
    buf = HoldBuffer(3, ordered=ordered)
    assert buf.push(1.0, 10, "a") == [] and buf.push(2.0, 11, "b") == []
    assert buf.pop_due(0.5) == [] and buf.oldest_offset() == 10
    assert buf.push(1.5, 9, "c") == []  # due before "b"
    assert len(buf) == 3 and buf.oldest_offset() == 9
    assert buf.push(3.0, 13, "d") == ["a"]  # at the limit the earliest due goes early
    assert buf.pop_due(1.9) == ["c"]
    assert buf.drain() == ["b", "d"] and len(buf) == 0 and buf.oldest_offset() is None
    assert buf.push(0.5, 14, "e") == [] and buf.push(0.7, 15, "f") == []
    assert buf.pop_due(0.6) == ["e"] and buf.pop_due(0.7) == ["f"]


def test_reorder_releases_full_window_shuffled_and_partial_after_wait():
    f = Reorder(Reorder.Config(window=5, max_wait=1.0), random.Random(3))
    actions = f.act(seeded([rec(i) for i in range(5)]), 0.0)
    assert actions[:4] == [HOLD] * 4
    out = [r.item.record.offset for r in actions[4].released]
    assert sorted(out) == [0, 1, 2, 3, 4] and out != [0, 1, 2, 3, 4]
    f.act(seeded([rec(5)]), 2.0)
    assert f.due(2.5) == [] and [r.item.record.offset for r in f.due(3.0)] == [5]


def test_duplicate_spacing():
    f = Duplicate(Duplicate.Config(copies=2, spacing=0.5), random.Random(1))
    [action] = f.act(picks_of([rec(1)]), 10.0)
    assert isinstance(action, Extra) and action.copies == []  # the original passes alone
    assert len(f.due(10.5)) == 1 and len(f.due(11.0)) == 1 and f.held() == 0


def test_outage_holds_during_window_then_bursts_in_order():
    cfg = Outage.Config(schedule={"start": 0, "duration": 5}, partitions=[0])
    f = Outage(cfg, random.Random(1))
    assert f.act(picks_of([rec(1, partition=1)]), 1.0) == [KEEP]
    for i in range(10):
        assert f.act(picks_of([rec(i)]), 1.0 + i * 0.1) == [HOLD]
    assert f.due(4.9) == []
    burst = f.due(5.0)
    assert [r.item.record.offset for r in burst] == list(range(10))
    assert burst[0].injection.detail["burst"] == 10


def test_an_outage_keeps_the_commit_point_behind_an_older_record_a_delay_released_into_it():
    """Behind a ``delay``, an outage's backlog is not in offset order: record 868 comes
    out of the delay after 900 went in. The partition's commit point must stay behind
    868, or a crash during the outage loses it (seen in the exactly-once crash test)."""
    pipe = engine(
        {"type": "delay", "fraction": 1.0, "delay": "1s", "where": {"key": "slow"}},
        {"type": "outage", "schedule": {"start": 0, "duration": "1h"}},
    )
    pipe.tick(0.0)
    early = [message(rec(868, key=b"slow"))]
    assert pipe.plan(0, early, 0, 1, now=0.0).outputs == {0: []}  # held by the delay
    late = [message(rec(900))]
    pipe.plan(0, late, 0, 1, now=0.5)  # 900: straight into the outage
    released = pipe.due(1.0).items  # 868 leaves the delay, into the outage after 900
    assert released == {0: []}  # held again
    outage = pipe.stages[1].holding(0)
    assert outage.held_offsets() == [900, 868]
    assert pipe.oldest_held(0) == 868


def test_stale_replay_replace_and_inject():
    f = StaleReplay(StaleReplay.Config(lag=10, mode="replace"), random.Random(1))
    history = [rec(i, ts=1000 * i) for i in range(20)]  # event time drives the lag
    assert f.scan(picks_of(history), [False] * 20, 0.0) == [KEEP] * 20
    [out] = f.act(picks_of([rec(20, ts=20_000)]), 0.0)
    assert isinstance(out, Replace)
    assert out.record.offset == 20 and out.record.value == b"v10"
    assert out.record.timestamp == 10_000
    assert out.injection.detail["stale_of"] == {"partition": 0, "offset": 10}
    g = StaleReplay(StaleReplay.Config(lag=10, mode="inject", timestamp="now"), random.Random(1))
    for i in range(20):
        g.scan(picks_of([rec(i)]), [False], float(i))  # no timestamps: the bridge's clock
    item = Item(rec(20, ts=0))
    [extra] = g.act(picks_of([item.record]), 20.0)
    live, stale = extra.apply(item, [])
    assert live.record.value == b"v20" and stale.record.value == b"v10"
    assert stale.record.timestamp == 0 and stale.injections[0].effect == "extra"


def test_stale_replay_ring_is_bounded_and_follows_the_stream():
    f = StaleReplay(StaleReplay.Config(lag=5, buffer=100), random.Random(1))
    records = [rec(i, ts=1000 * i) for i in range(1000)]
    actions = f.scan(picks_of(records), [i % 10 == 0 for i in range(1000)], 0.0)
    picked = [a.record.value if isinstance(a, Replace) else None for a in actions[::10]]
    assert len(f._times) - f._start <= 100
    assert picked[50:53] == [b"v495", b"v505", b"v515"]


def test_pipeline_carries_earlier_injections_through_holding_stage():
    eng = engine(
        {"type": "stale_replay", "fraction": 1.0, "lag": 0},
        {"type": "delay", "fraction": 1.0, "delay": 1.0},
    )
    eng.tick(0)
    assert process(eng, [rec(0), rec(1)], 0) == [[], []]
    types = sorted(tuple(i.type for i in item.injections) for item in released(eng, 1.0))
    assert ("stale_replay", "delay") in types


def test_budget_limits_injections_per_second():
    eng = engine({"type": "drop", "fraction": 1.0, "max_injections_per_second": 10})
    eng.tick(0)
    dropped = sum(out == [] for out in process(eng, [rec(i) for i in range(100)], 0.0))
    assert dropped == 10
    assert sum(one(eng, rec(100 + i), 0.5) == [] for i in range(10)) == 5  # half a second


def test_pause_turns_everything_off_and_ends_episodes():
    eng = engine({"type": "drop", "fraction": 1.0})
    assert [e.kind for e in eng.tick(0)] == ["episode_start"]
    eng.paused = True
    assert [e.kind for e in eng.tick(1)] == ["episode_end"]
    assert one(eng, rec(1), 1) != []


def test_copies_held_by_a_later_stage_keep_their_own_injections():
    eng = engine(
        {"type": "duplicate", "fraction": 1.0, "copies": 2},
        {"type": "delay", "fraction": 1.0, "delay": 1.0},
    )
    eng.tick(0)
    assert one(eng, rec(0), 0) == []
    out = released(eng, 1.0)
    effects = sorted(i.effect for item in out for i in item.injections)
    assert len(out) == 3 and effects == ["extra", "extra", "modify", "modify", "modify"]
    assert len({id(item.injections) for item in out}) == 3  # each copy its own list


def test_forgetting_a_partition_drops_what_its_faults_held():
    eng = engine({"type": "delay", "fraction": 1.0, "delay": 1.0})
    eng.tick(0)
    assert one(eng, rec(0), 0) == [] and one(eng, rec(0, partition=1), 0) == []
    eng.forget([0])  # revoked: the partition's held records were released before
    assert eng.oldest_held(0) is None and eng.oldest_held(1) == 0
    assert [i.record.partition for i in released(eng, 5.0)] == [1]


def test_draws_depend_on_the_record_not_on_what_came_before():
    """A restart replays offsets 6.. from the last commit: the same draws must follow."""
    cfg = {"type": "delay", "fraction": 0.5, "distribution": "uniform", "min": 0, "max": 9}

    def delays(first):
        eng = engine(cfg)
        eng.tick(0)
        process(eng, [rec(i) for i in range(first, 40)], 0.0)
        drained = eng.drain(0.0)[0]
        return {item.record.offset: item.injections[0].detail["delay_ms"] for item in drained}

    full, resumed = delays(0), delays(6)
    assert resumed and {o: d for o, d in full.items() if o >= 6} == resumed


def test_record_random_is_a_cheap_reseedable_random():
    from streamchaos.selection import RecordRandom

    a, b = RecordRandom(42), RecordRandom(42)
    assert [a.random() for _ in range(5)] == [b.random() for _ in range(5)]
    a.seed(7)
    values = [a.uniform(0, 1) for _ in range(2000)]
    assert 0.45 < sum(values) / len(values) < 0.55 and min(values) >= 0
    assert set(a.choice("abc") for _ in range(200)) == {"a", "b", "c"}
    assert 0 <= a.randrange(256) < 256
    # the draws are a function of the seed alone (a replayed offset repeats them)
    a.seed(7)
    first = (a.random(), a.gauss(0, 1))
    a.seed(8)
    assert (a.random(), a.gauss(0, 1)) != first
    a.seed(7)
    assert (a.random(), a.gauss(0, 1)) == first
    # ``gauss`` keeps its second value for the next call: a new seed must drop it
    a.seed(7)
    g = a.gauss(0, 1)
    a.seed(7)
    assert a.gauss(0, 1) == g
    # the state is the word and that kept value: restoring it repeats both kinds of draw
    state = a.getstate()
    after = (a.random(), a.gauss(0, 1), a.gauss(0, 1))
    a.setstate(state)
    assert (a.random(), a.gauss(0, 1), a.gauss(0, 1)) == after


def test_first_bits_are_what_a_seeded_record_random_draws_first():
    """Drift's per-record key: what the record's seeded generator would draw first."""
    from streamchaos.selection import RecordRandom, first_bits_array

    seeds = [0, 1, 7, 2**63 + 5, 2**64 - 1]
    for seed, key in zip(seeds, first_bits_array(seeds).tolist(), strict=True):
        assert key == RecordRandom(seed).getrandbits(64)


@pytest.mark.parametrize(
    "cfg",
    [
        {"type": "reorder", "fraction": 1.0, "window": 10, "max_wait": "1h"},
        {"type": "outage", "schedule": {"start": 0, "duration": "1h"}},
    ],
    ids=["reorder", "outage"],
)
def test_a_drain_ledgers_how_long_records_were_really_held(cfg):
    """A shutdown at t=5 releases what was held since t=1: held 4 s, not 0."""
    eng = engine(cfg)
    eng.tick(1.0)
    assert process(eng, [rec(i) for i in range(3)], 1.0) == [[], [], []]
    drained = eng.drain(5.0)[0]
    assert [item.injections[0].detail["held_ms"] for item in drained] == [4000.0] * 3
