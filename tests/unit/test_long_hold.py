"""The long-hold store's pure parts: which holds go there, what a hold record carries, the
lanes, and the configurations it refuses (the Kafka side: tests/integration)."""

from __future__ import annotations

import pytest

from streamchaos.bridge.long_hold import HEADER, Lanes, Note
from streamchaos.config import config_from_dict
from streamchaos.config.holds import hold_topic, hold_topics
from streamchaos.engine import Pipeline
from streamchaos.errors import ConfigError
from streamchaos.faults.base import FaultContext
from streamchaos.faults.delay import DelayConfig
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
    note = Note(
        99_000, 60.0, "delay", ("src", 2, 41), [("delay", "delay", "modify", {"delay_ms": 60000.0})]
    )
    on_topic = message(
        Record(
            "src.hold.shadow",
            5,
            7,
            b"k",
            b"value",
            (("trace", b"t1"), (HEADER, note.encode())),
            1234,
        )
    )
    read = Note.read(on_topic)
    assert read == note
    item = read.item(on_topic)
    assert item.record == held  # the source's coordinates, without the hold header
    assert [(i.fault, i.effect, i.detail) for i in item.injections] == [
        ("delay", "modify", {"delay_ms": 60000.0})
    ]
    stranger = message(Record("src.hold.shadow", 5, 8, b"k", b"v", (), 0))
    assert Note.read(stranger) is None
    broken = message(Record("src.hold.shadow", 5, 9, b"k", b"v", ((HEADER, b"{"),), 0))
    assert Note.read(broken) is None


def test_lanes_split_hold_lengths_evenly_from_the_horizon_to_the_longest():
    lanes = Lanes("t", horizon=10.0, longest=90.0, partitions=8)
    assert [lanes.of(s) for s in (10.0, 19.9, 20.0, 50.0, 89.9, 90.0, 500.0)] == [
        0,
        0,
        1,
        4,
        7,
        7,
        7,
    ]
    assert Lanes("t", 10.0, 60.0, 1).of(40.0) == 0
    assert Lanes("t", 10.0, 10.0, 8).of(40.0) == 0  # one fixed length: one lane


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
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        config_from_dict(raw, env={})
