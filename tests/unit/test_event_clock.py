"""``clock: event``: schedules, ramps, budgets and episodes read from record timestamps, so
the same records give the same injections however they are cut into batches."""

from __future__ import annotations

import time

import pytest

from streamchaos.bridge.setup import started_ago
from streamchaos.config import config_from_dict
from streamchaos.engine import EventClock, Pipeline
from streamchaos.engine.windows import Windows
from streamchaos.errors import ConfigError
from streamchaos.evaluation.episodes import episodes_from_ledger
from streamchaos.record import Record
from streamchaos.schedule import Schedule
from tests.fakes import message

T0 = 1_700_000_000_000  # epoch ms of the experiment's time zero


def pipeline(*faults, start_ms=T0, seed=7):
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "src.shadow", "faults": list(faults)}],
    }
    route = config_from_dict(raw, env={}).routes[0]
    return Pipeline("src", route.faults, seed, None, EventClock(start_ms))


def stream(n, partition=0, every_ms=10, first=0):
    """``n`` records of one partition, ``every_ms`` apart from time zero."""
    return [
        Record("src", partition, first + i, b"k%d" % i, b"v%d" % i, (), T0 + i * every_ms)
        for i in range(n)
    ]


def replay(pipe, records, batch, now_step):
    """Feed ``records`` (one partition) in runs of ``batch``, the bridge's clock moving
    ``now_step`` a turn. Returns what each record became (its outputs' values, [] for
    dropped) and the episode lines' detail, as the ledger would hold them."""
    msgs = [message(r) for r in records]
    became, episodes, now = {}, [], 0.0
    for start in range(0, len(msgs), batch):
        count = min(batch, len(msgs) - start)
        plan = pipe.plan(records[0].partition, msgs, start, count, now)
        for i in range(start, start + count):
            outs = plan.outputs.get(i)
            became[records[i].offset] = None if outs is None else [o.value for o in outs]
        episodes += [(ev.stage.name, ev.kind, ev.extra) for ev in pipe.tick(now)]
        now += now_step
    episodes += [(ev.stage.name, ev.kind, ev.extra) for ev in pipe.close(now)]
    return became, episodes


FAULTS = (
    {"type": "drop", "name": "windowed", "fraction": 0.3,
     "schedule": {"start": "2s", "every": "3s", "on": "1s", "duration": "10s"}},
    {"type": "drop", "name": "ramp", "fraction": 0.5,
     "schedule": {"start": "1s", "shape": "linear", "ramp": "4s"}},
    {"type": "drop", "name": "budget", "fraction": 0.8, "max_injections_per_second": 20},
)  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f["name"])
def test_the_same_records_in_other_batches_at_other_speeds_give_the_same_injections(fault):
    records = stream(1500)
    slow = replay(pipeline(fault), records, batch=7, now_step=0.5)
    fast = replay(pipeline(fault), records, batch=500, now_step=0.001)
    assert slow == fast
    dropped = [off for off, out in slow[0].items() if out == []]
    assert 0 < len(dropped) < len(records)


def test_a_window_selects_only_records_whose_time_falls_in_it():
    fault = FAULTS[0]
    became, episodes = replay(pipeline(fault), stream(1500), batch=100, now_step=0.1)
    dropped_at = [off * 10 for off, out in became.items() if out == []]  # ms from time zero
    assert dropped_at and all(((t - 2000) % 3000) < 1000 and 2000 <= t < 12000 for t in dropped_at)
    starts = [e[2]["event_at"] - T0 for e in episodes if e[1] == "episode_start"]
    ends = [(e[2]["event_at"] - T0, e[2]["records"], e[2]["injected"]) for e in episodes
            if e[1] == "episode_end"]  # fmt: skip
    assert starts == [2000, 5000, 8000, 11000]  # the stream ends at 14.99 s
    assert [e[0] for e in ends] == [3000, 6000, 9000, 12000]
    assert [e[1] for e in ends] == [100, 100, 100, 100]  # 10 ms apart: 100 a second
    assert sum(e[2] for e in ends) == len(dropped_at)


def test_the_budget_counts_event_time_per_partition():
    """20 a second at most, on 100 records a second: the budget, not the fraction, binds."""
    became, _ = replay(pipeline(FAULTS[2]), stream(1000), batch=64, now_step=5.0)
    dropped = [off for off, out in became.items() if out == []]
    per_second = [sum(1 for off in dropped if off // 100 == s) for s in range(10)]
    assert max(per_second) <= 20 + 20  # a full bucket at the start, then the rate
    assert sum(per_second[1:]) <= 20 * 9 + 1


def test_an_episode_ends_when_every_partition_passed_it():
    pipe = pipeline(
        {"type": "drop", "fraction": 0.5, "schedule": {"start": "1s", "duration": "1s"}}
    )
    ahead, behind = stream(300, partition=0), stream(300, partition=1)
    msgs0, msgs1 = [message(r) for r in ahead], [message(r) for r in behind]
    pipe.plan(0, msgs0, 0, 300, 0.0)  # partition 0 reaches 2.99 s
    pipe.plan(1, msgs1, 0, 150, 0.0)  # partition 1 reaches 1.49 s
    kinds = [ev.kind for ev in pipe.tick(0.0)]
    assert kinds == ["episode_start"]  # the watermark (1.4 s) is inside the window
    pipe.plan(1, msgs1, 150, 150, 0.0)
    [end] = pipe.tick(0.0)
    assert end.kind == "episode_end" and end.extra is not None
    assert end.extra["event_at"] == T0 + 2000
    assert end.extra["records"] == 200  # 100 from each partition, whichever came first


def test_time_zero_is_the_first_record_without_start_at():
    pipe = pipeline({"type": "drop", "fraction": 1.0, "schedule": {"start": "1s"}}, start_ms=None)
    records = [Record("src", 0, i, b"k", b"v", (), T0 + 5_000 + i * 100) for i in range(20)]
    became, episodes = replay(pipe, records, batch=5, now_step=1.0)
    assert [off for off, out in became.items() if out == []] == list(range(10, 20))
    assert episodes[0][2] == {"event_at": T0 + 6_000}


def test_records_without_a_timestamp_take_the_time_before_them():
    pipe = pipeline({"type": "drop", "fraction": 1.0, "schedule": {"start": "1s"}})
    times = [T0 + 900, *[T0 + 1_000] * 4, *[0] * 5]  # 0: none (the fake's convention)
    records = [Record("src", 0, i, b"k", b"v", (), ts) for i, ts in enumerate(times)]
    became, _ = replay(pipe, records, batch=10, now_step=1.0)
    assert [off for off, out in became.items() if out == []] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_windows_passed_in_one_step_are_written_only_with_records_in_them():
    windows = Windows(Schedule(start=0, every=10, on=5))
    windows.count(22.0, 3, 1)  # a record in window 2; none in 0, 1, 3
    changes = windows.advance(41.0, off=False)
    assert changes == [
        ("episode_start", 20.0, None),
        ("episode_end", 25.0, (3, 1)),
        ("episode_start", 40.0, None),
    ]
    assert windows.advance(46.0, off=False) == [("episode_end", 45.0, (0, 0))]


def test_a_paused_stage_ends_its_episode_and_reopens_the_window_when_resumed():
    windows = Windows(Schedule(start=0, duration=100))
    assert windows.advance(1.0, off=False) == [("episode_start", 0.0, None)]
    assert windows.advance(2.0, off=True) == [("episode_end", 2.0, (0, 0))]
    assert windows.advance(3.0, off=True) == []
    assert windows.advance(4.0, off=False) == [("episode_start", 4.0, None)]


@pytest.mark.parametrize(
    ("t", "index", "last"),
    [(-1, None, -1), (5, 0, 0), (7, None, 0), (15.5, 1, 1), (26.9, 2, 2), (27, None, 2),
     (500, None, 2)],
)  # fmt: skip
def test_schedule_windows(t, index, last):
    schedule = Schedule(start=5, every=10, on=2, duration=25)
    assert schedule.window_index(t) == index
    assert schedule.last_started(t) == last


def test_start_at_is_the_experiments_time_zero_on_either_clock():
    base = {"experiment": "e", "routes": [{"source": "a", "shadow": "a.shadow"}]}
    cfg = config_from_dict(base | {"clock": "event", "start_at": "2026-12-07T10:00:00Z"}, env={})
    assert cfg.start_ms == 1_796_637_600_000
    wall = config_from_dict(base | {"start_at": "2026-12-07T10:00:00Z"}, env={})
    assert started_ago(wall) == pytest.approx(time.time() - 1_796_637_600, abs=5)
    assert started_ago(cfg) == 0.0  # event time counts in the records' timestamps
    assert started_ago(config_from_dict(base, env={})) == 0.0  # from when the bridge starts
    with pytest.raises(ConfigError, match="start_at"):
        config_from_dict(base | {"clock": "event", "start_at": "2026-12-07T10:00:00"}, env={})
    with pytest.raises(ConfigError, match="clock"):
        config_from_dict(base | {"clock": "events"}, env={})


def wall_pipeline(fault):
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "src.shadow", "faults": [fault]}],
    }
    return Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, 7)


def test_wall_clock_episodes_carry_the_schedules_bounds_but_not_after_a_pause():
    pipe = wall_pipeline({"type": "drop", "schedule": {"start": "10s", "every": "20s", "on": "5s"}})
    seen = [(ev.kind, ev.bound) for now in (0.0, 10.3, 12.0, 15.2, 30.4) for ev in pipe.tick(now)]
    assert seen == [
        ("episode_start", 10.0), ("episode_end", 15.0), ("episode_start", 30.0)
    ]  # fmt: skip
    pipe.paused = True
    [(kind, bound)] = [(ev.kind, ev.bound) for ev in pipe.tick(31.0)]
    assert (kind, bound) == ("episode_end", None)  # the pause, not the schedule, ended it
    pipe.paused = False
    [(kind, bound)] = [(ev.kind, ev.bound) for ev in pipe.tick(32.0)]
    assert (kind, bound) == ("episode_start", None)  # the same window, again


def line(kind, at, **detail):
    return {"experiment": "e", "route": "r", "fault": "f", "type": "drift", "kind": kind,
            "at": at, "detail": {"fraction": 0.1, **detail}}  # fmt: skip


def test_bridges_that_share_a_schedule_give_one_episode_ending_with_the_last():
    ledger = [
        line("episode_start", 10_004, scheduled_at=10_000),  # member 1
        line("episode_start", 10_009, scheduled_at=10_000),  # member 2
        line("episode_end", 12_000),  # member 1 leaves early (stopped: no bound)
        line("episode_end", 15_011, scheduled_at=15_000),  # member 2, at the schedule's end
        line("episode_start", 40_000),  # a bridge of its own: no bound
        line("episode_end", 41_000),
    ]
    first, second = episodes_from_ledger(ledger)
    assert (first.start, first.end) == (10.004, 15.011)  # not cut short by member 1
    assert (second.start, second.end) == (40.0, 41.0)


def test_a_restart_within_an_episode_is_not_lost():
    """A bridge stopped at 30 s and started again (same start_at) at 35 s writes the same
    bound again: that is a second stretch of the episode, not a copy of the first."""
    ledger = [
        line("episode_start", 10_000, scheduled_at=10_000),
        line("episode_end", 30_000),  # stopped
        line("episode_start", 35_000, scheduled_at=10_000),  # restarted, same schedule
        line("episode_end", 70_000, scheduled_at=70_000),
    ]
    spans = [(ep.start, ep.end) for ep in episodes_from_ledger(ledger)]
    assert spans == [(10.0, 30.0), (35.0, 70.0)]


def test_a_faults_episode_state_starts_over_by_the_records_time_not_the_batches():
    """``corrupt`` ``stuck`` freezes a field at the first value of each episode: which
    value that is must not depend on where the batches were cut."""
    from streamchaos.codec import JsonCodec
    from streamchaos.faults.base import FaultContext

    raw = {"experiment": "e", "routes": [{"source": "src", "shadow": "src.shadow",
           "format": "json", "faults": [{"type": "corrupt", "mode": "stuck",
           "fields": ["amount"], "fraction": 0.5,
           "schedule": {"start": "1s", "every": "3s", "on": "1s"}}]}]}  # fmt: skip
    route = config_from_dict(raw, env={}).routes[0]
    records = [
        Record("src", 0, i, b"k", b'{"amount": %d}' % i, (), T0 + i * 10) for i in range(1500)
    ]
    outputs = []
    for batch in (7, 500):
        ctx = FaultContext(JsonCodec(), "src", "src.shadow")
        pipe = Pipeline("src", route.faults, 7, ctx, EventClock(T0))
        outputs.append(replay(pipe, records, batch=batch, now_step=0.1)[0])
    assert outputs[0] == outputs[1]
    changed = [off for off, out in outputs[0].items() if out not in (None, [])]
    assert changed
