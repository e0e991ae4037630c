"""The long-hold store's pure parts: which holds go there, what a hold record carries, the
lanes, and the configurations it refuses (the Kafka side: tests/integration)."""

from __future__ import annotations

import re

import pytest

from streamchaos.codec import JsonCodec
from streamchaos.config import config_from_dict
from streamchaos.config.holds import hold_topics
from streamchaos.config.plan import added, parse_fault
from streamchaos.engine import Pipeline
from streamchaos.errors import ConfigError
from streamchaos.evaluation.reconcile import reconcile
from streamchaos.faults.base import FaultContext
from streamchaos.faults.delay import DelayConfig
from streamchaos.faults.label_delay import LabelDelayConfig
from streamchaos.hold_record import HEADER, Lanes, Note, hold_topic
from streamchaos.record import Record
from tests.fakes import message


def pipeline(horizon, *faults):
    ctx = FaultContext(None, "src", "src.shadow")
    ctx.horizon = horizon
    configs = [DelayConfig(type="delay", **f) for f in faults]
    pipe = Pipeline("src", configs, seed=3, ctx=ctx)
    pipe.tick(0.0)  # the episodes start
    return pipe


def records(n):
    return [
        message(Record("src", 0, i, b"k", b"v%d" % i, (("h", b"1"),), 1000 + i)) for i in range(n)
    ]


def test_a_hold_beyond_the_horizon_is_deferred_and_a_shorter_one_stays_in_memory():
    msgs = records(10)
    long = pipeline(1.0, {"fraction": 1.0, "delay": 60.0}).plan(0, msgs, 0, 10, now=5.0)
    assert long.outputs == {i: [] for i in range(10)}
    assert [(d.item.offset, d.until, d.seconds, d.after) for d in long.deferred] == [
        (i, 65.0, 60.0, "delay") for i in range(10)
    ]
    assert [i.detail for i in long.deferred[0].item.injections] == [{"delay_ms": 60000.0}]
    short = pipeline(100.0, {"fraction": 1.0, "delay": 60.0})
    plan = short.plan(0, msgs, 0, 10, now=5.0)
    assert not plan.deferred and short.oldest_held(0) == 0  # held in memory, as before
    assert not pipeline(None, {"fraction": 1.0, "delay": 60.0}).plan(0, msgs, 0, 10, 5.0).deferred


def test_a_hold_record_carries_what_the_release_needs():
    held = Record("src", 2, 41, b"k", b"value", (("trace", b"t1"),), 1234)
    injections = [("delay", "delay", "modify", {"delay_ms": 60000.0})]
    note = Note(99_000, "delay", ("src", 2, 41), 1234, injections)
    headers = (("trace", b"t1"), (HEADER, note.encode()))
    on_topic = message(Record("src.hold.shadow", 5, 7, b"k", b"value", headers, 5555))
    read = Note.read(on_topic)
    assert read == note
    item = read.item(on_topic)
    assert item.record == held  # the source's coordinates and time, without the note
    assert [(i.fault, i.effect, i.detail) for i in item.injections] == [
        ("delay", "modify", {"delay_ms": 60000.0})
    ]
    early = read.item(on_topic, early=True)  # the kill switch, or its fault removed
    assert early.injections[0].detail == {"delay_ms": 60000.0, "released_early": True}
    stranger = message(Record("src.hold.shadow", 5, 8, b"k", b"v", (), 0))
    assert Note.read(stranger) is None
    broken = message(Record("src.hold.shadow", 5, 9, b"k", b"v", ((HEADER, b"{"),), 0))
    assert Note.read(broken) is None


def test_lanes_spread_one_hold_length_by_partition_and_several_by_length():
    lanes = Lanes("t", shortest=10.0, longest=90.0, partitions=8)
    lengths = (10.0, 19.9, 20.0, 50.0, 89.9, 90.0, 500.0)
    assert [lanes.of(s, 2) for s in lengths] == [0, 0, 1, 4, 7, 7, 7]
    assert Lanes("t", 10.0, 60.0, 1).of(40.0, 5) == 0
    fixed = Lanes("t", 60.0, 60.0, 4)  # a fixed delay: the source partition's order kept
    assert [fixed.of(60.0, p) for p in range(6)] == [0, 1, 2, 3, 0, 1]


def test_a_label_delay_beyond_the_horizon_is_deferred_per_class():
    cfg = LabelDelayConfig(
        label_field="fraud", time_scale=1e-3,
        classes={"true": {"distribution": "exponential", "delay": "10h", "cap": "20h"},
                 "false": {"delay": "10s"}},
    )  # fmt: skip
    assert cfg.longest() == pytest.approx(72.0) and cfg.shortest() == 0.0
    ctx = FaultContext(JsonCodec(), "labels", "labels.shadow")
    ctx.horizon = 1.0
    pipe = Pipeline("labels", [cfg], seed=3, ctx=ctx)
    pipe.tick(0.0)
    values = [b'{"fraud": true}', b'{"fraud": false}'] * 20
    msgs = [message(Record("labels", 0, i, b"k", v)) for i, v in enumerate(values)]
    plan = pipe.plan(0, msgs, 0, len(msgs), now=0.0)
    deferred = {d.item.offset: d.seconds for d in plan.deferred}
    assert sorted(deferred) == [i for i in range(40) if i % 2 == 0]  # 10 s x 1e-3: in memory
    assert all(1.0 < s <= 72.0 for s in deferred.values())
    assert pipe.held(pipe.stages[0]) == 20  # the false ones, 10 ms


def route(*faults, **extra):
    return {"source": "features", "shadow": "features.shadow", "faults": list(faults), **extra}


def cfg(*routes, **bridge):
    return {"experiment": "e", "routes": list(routes), "bridge": bridge}


def test_only_routes_that_hold_beyond_the_horizon_get_a_hold_topic():
    assert hold_topic("features.shadow", ".shadow") == "features.hold.shadow"
    long = cfg(route({"type": "delay", "delay": "1h"}), hold_horizon="10m", hold_lanes=4)
    assert hold_topics(config_from_dict(long, env={})) == {"features.hold.shadow": 4}
    short = cfg(route({"type": "delay", "delay": "1m"}), hold_horizon="10m")
    assert hold_topics(config_from_dict(short, env={})) == {}
    off = cfg(route({"type": "delay", "delay": "1h"}))
    assert hold_topics(config_from_dict(off, env={})) == {}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (cfg(route({"type": "delay", "distribution": "exponential", "delay": "1h"}),
             hold_horizon="1m"), "give it a cap"),
        (cfg(route({"type": "delay", "delay": "1h"}, {"type": "reorder"}), hold_horizon="1m"),
         "routes[0].faults[1]: reorder holds records after faults[0]"),
        (cfg(route({"type": "delay", "delay": "1h"}, source="^feat.*", shadow="{topic}.shadow"),
             hold_horizon="1m"),
         "routes[0].source: a pattern route"),
        (cfg(route({"type": "delay", "delay": "1h"}), route({"type": "drop"},
             source="other", shadow="features.hold.shadow"), hold_horizon="1m"),
         "is a source or shadow topic"),
    ],
)  # fmt: skip
def test_long_holds_the_bridge_cannot_keep_are_refused_naming_the_field(raw, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        config_from_dict(raw, env={})


def test_a_live_change_is_checked_as_the_file_is():
    raw = cfg(route({"type": "delay", "delay": "1h"}), hold_horizon="1m")
    loaded = config_from_dict(raw, env={})
    reorder = parse_fault({"type": "reorder"})
    with pytest.raises(ConfigError, match=re.escape("routes[0].faults[1]: reorder holds")):
        added(loaded, "features", reorder)


def test_an_audit_counts_records_waiting_in_the_hold_topic_as_held_not_missing():
    report = reconcile({0: [0, 1, 2]}, [(0, 0)], [], "src")
    assert [d.offset for d in report.missing] == [1, 2] and not report.ok
    report.held, report.missing = report.missing, []  # what audit finds in the hold topic
    report.overdue, report.hold_topic = 1, "src.hold.shadow"
    assert report.ok
    assert "held: 2 source records wait in src.hold.shadow (not missing; 1 past" in report.summary()
