"""The experiment's clock on the real broker: one recorded window replayed at two speeds
under ``clock: event`` gives the same injections, episodes and shadow records; on the wall
clock, ``start_at`` puts a (re)started bridge where the schedule is, and members and
restarts share one time zero and write each episode once."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.bridge.forward import Forwarder
from streamchaos.config import config_from_dict
from streamchaos.evaluation.episodes import episodes_from_ledger
from streamchaos.kafkatools import produce_all, read_all
from streamchaos.ledger import read_ledger, read_ledger_topic
from streamchaos.lineage import LINEAGE_HEADER
from tests.integration.conftest import (
    SlowProducer,
    bridge_config,
    stop_all,
    wait_committed,
)

pytestmark = pytest.mark.integration

START_MS = 1_796_637_600_000  # 2026-12-07T10:00:00Z: the recorded window's time zero
FAULTS = [
    {"type": "drift", "name": "ramp", "fraction": 0.3, "warmup": 50,
     "features": {"amount": {"shift": 2, "unit": "sigma"}},
     "schedule": {"start": "10s", "shape": "linear", "ramp": "20s"}},
    {"type": "corrupt", "name": "bursts", "mode": "nan", "fields": ["amount"], "fraction": 0.2,
     "schedule": {"start": "5s", "every": "10s", "on": "3s"}},
    {"type": "drop", "name": "capped", "fraction": 0.5, "max_injections_per_second": 5},
    {"type": "delay", "name": "late", "fraction": 0.05, "distribution": "fixed", "delay": "100ms"},
    {"type": "duplicate", "name": "twice", "fraction": 0.03},
]  # fmt: skip


def recorded_window(topic: str, n: int, partitions: int) -> list[dict[str, Any]]:
    """``n`` feature records 10 ms apart from time zero (60 s for 6,000), round robin."""
    return [
        {
            "topic": topic,
            "key": f"user-{i % 97}".encode(),
            "value": json.dumps({"i": i, "amount": (i * 7919) % 1000 / 10}).encode(),
            "partition": i % partitions,
            "timestamp": START_MS + 10 * i,
            "headers": [("trace", f"t{i}".encode())],
        }
        for i in range(n)
    ]


class Throttled(Forwarder):
    """A consumer loop that sleeps before each batch: the same records, slower."""

    def forward(self, msgs: list[Any], now: float) -> None:
        time.sleep(0.01)
        super().forward(msgs, now)


def replay(bootstrap: str, source: str, shadow: str, ledger: Path, slow: bool) -> None:
    raw = bridge_config(
        bootstrap,
        f"replay-{shadow}",
        [{"source": source, "shadow": shadow, "format": "json", "faults": FAULTS}],
        clock="event",
        start_at="2026-12-07T10:00:00Z",
        ledger={"path": str(ledger)},
        bridge={"lineage_header": LINEAGE_HEADER, "batch_size": 25 if slow else 1000},
    )
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    if slow:
        import streamchaos.bridge.runner as runner

        original = runner.Forwarder
        runner.Forwarder = Throttled  # type: ignore[misc]
        try:
            assert bridge.run(idle_exit=3) == 0
        finally:
            runner.Forwarder = original  # type: ignore[misc]
    else:
        assert bridge.run(idle_exit=3) == 0


def ground_truth(ledger: Path) -> tuple[list[str], list[str]]:
    """Injection and episode lines without what depends on when and where they landed:
    the wall-clock ``at`` and the shadow coordinates."""
    lines = read_ledger(ledger)
    injections = sorted(
        json.dumps({k: v for k, v in e.items() if k not in ("at", "shadow")}, sort_keys=True)
        for e in lines
        if e["kind"] == "injection"
    )
    episodes = sorted(
        json.dumps({k: v for k, v in e.items() if k != "at"}, sort_keys=True)
        for e in lines
        if e["kind"].startswith("episode")
    )
    return injections, episodes


def shadow_records(bootstrap: str, shadow: str) -> Counter[tuple[Any, ...]]:
    return Counter(
        (m.key(), m.value(), m.timestamp()[1], tuple(m.headers() or ()))
        for m in read_all(bootstrap, shadow)
    )


def test_a_recorded_window_replayed_at_two_speeds_gives_the_same_run(
    kafka_bootstrap, topic_factory, tmp_path
):
    source = topic_factory(partitions=3)
    produce_all(kafka_bootstrap, recorded_window(source, 6000, 3))
    runs = []
    for slow in (False, True):
        shadow = topic_factory(partitions=3, suffix=".shadow")
        ledger = tmp_path / f"ledger-{'slow' if slow else 'fast'}.jsonl"
        began = time.monotonic()
        replay(kafka_bootstrap, source, shadow, ledger, slow)
        runs.append((ground_truth(ledger), shadow_records(kafka_bootstrap, shadow)))
        runs[-1] += (time.monotonic() - began,)
    (fast_truth, fast_shadow, fast_took), (slow_truth, slow_shadow, slow_took) = runs
    assert slow_took > fast_took  # the throttle slowed it (not a timing assertion on the run)
    assert fast_truth[0] == slow_truth[0]  # injections: same records, same details
    assert fast_truth[1] == slow_truth[1]  # episodes: same bounds, same counts
    assert fast_shadow == slow_shadow  # same keys, values, timestamps and headers
    faults = Counter(json.loads(line)["fault"] for line in fast_truth[0])
    assert set(faults) == {f["name"] for f in FAULTS}
    assert faults["capped"] <= 5 * 3 * 61  # the budget: per partition, in event time
    episodes = [json.loads(line) for line in fast_truth[1]]
    bursts = sorted(e["detail"]["event_at"] - START_MS for e in episodes if e["fault"] == "bursts")
    assert bursts == sorted(
        [5000 + 10000 * k for k in range(6)] + [8000 + 10000 * k for k in range(6)]
    )


@pytest.mark.parametrize("started", [None, 100.0])
def test_start_at_on_the_wall_clock_puts_a_new_bridge_where_the_schedule_is(
    kafka_bootstrap, topic_factory, tmp_path, started
):
    """A bridge started (or restarted) 100 s into an experiment whose fault turned on at
    50 s injects from its first record; one without start_at starts the schedule over."""
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    produce_all(kafka_bootstrap, recorded_window(source, 300, 1))
    extra: dict[str, Any] = {"ledger": {"path": str(tmp_path / "ledger.jsonl")}}
    if started is not None:
        zero = datetime.fromtimestamp(time.time() - started, UTC)
        extra["start_at"] = zero.isoformat()
    fault = {"type": "drop", "fraction": 1.0, "schedule": {"start": "50s", "duration": "1h"}}
    route = {"source": source, "shadow": shadow, "faults": [fault]}
    raw = bridge_config(kafka_bootstrap, f"g-{shadow}", [route], **extra)
    assert Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry()).run(3) == 0
    drops = [e for e in read_ledger(tmp_path / "ledger.jsonl") if e["kind"] == "injection"]
    assert len(drops) == (300 if started else 0)


def writer(members: list[Any], route: str, timeout: float = 30) -> int:
    """The member that writes ``route``'s episodes (its log says so last), once one does
    (not during a rebalance)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k, member in enumerate(members):
            said = [ln for ln in member.log().splitlines() if f"{route}: episodes written" in ln]
            if said and said[-1].endswith("(its partition 0 is)"):
                return k
        time.sleep(0.2)
    raise AssertionError(f"no member writes the episodes of {route} after {timeout}s")


def test_two_members_and_restarts_share_one_clock_and_write_each_episode_once(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    """Two members of one group and no start_at: the first writes time zero to the
    clock topic and both take it; one is SIGKILLed and the other stopped, each started
    again mid-run. Each of the schedule's episodes is in the ledger once, start and end,
    at the schedule's times from that zero, with drops only inside them."""
    source = topic_factory(partitions=4)
    shadow = topic_factory(partitions=4, suffix=".shadow")
    ledger = topic_factory(partitions=1, suffix=".ledger")
    schedule = {"start": "6s", "every": "8s", "on": "4s", "duration": "30s"}
    fault = {"type": "drop", "fraction": 0.1, "schedule": schedule}
    route = {"source": source, "shadow": shadow, "faults": [fault]}
    cfg = bridge_config(kafka_bootstrap, group_id, [route], ledger={"topic": ledger})
    members = [bridge_process(cfg), bridge_process(cfg)]
    for member in members:
        member.wait_for_log("assigned", timeout=60)
    stream = SlowProducer(kafka_bootstrap, source, 9000, 4, chunks=90, pause=0.45)
    stream.start()
    time.sleep(8)  # inside the first window (6-10 s), 2 s from its end
    k = writer(members, source)
    members[k].kill()  # SIGKILL: nothing ends, the other member takes its partitions
    members[k] = bridge_process(cfg)
    time.sleep(8)  # inside the second window (14-18 s)
    k = writer(members, source)
    members[k].signal(signal.SIGTERM)  # a clean stop beside another member ends nothing
    assert members[k].wait(60) == 0
    members[k] = bridge_process(cfg)
    stream.join(90)
    assert stream.error is None
    wait_committed(kafka_bootstrap, group_id, source, 90)
    [zero] = [
        json.loads(m.value())["at"]
        for m in read_all(kafka_bootstrap, f"{ledger}.clock")
        if m.key().decode().startswith(f"zero/it/{group_id}/")
    ][:1]  # the first proposal is the experiment's time zero
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the last window ends 34 s from zero
        if time.time() * 1000 > zero + 36_000:
            break
        time.sleep(1)
    stop_all(members)
    entries = read_ledger_topic(kafka_bootstrap, ledger, experiment="it")
    windows = [6_000, 14_000, 22_000, 30_000]
    for kind, side in (("episode_start", 0), ("episode_end", 4_000)):
        lines = [e for e in entries if e["kind"] == kind]
        assert sorted(e["detail"]["scheduled_at"] - zero for e in lines) == [
            w + side for w in windows
        ], kind  # each once, whichever member wrote it, at the shared times
    episodes = episodes_from_ledger(entries)
    assert [(round(e.start * 1000) - zero, round(e.end * 1000) - zero) for e in episodes] == [
        (pytest.approx(w, abs=2_000), pytest.approx(w + 4_000, abs=2_000)) for w in windows
    ]
    drops = [e["at"] - zero for e in entries if e["kind"] == "injection"]
    assert drops and all(
        any(w <= at <= w + 4_000 + 1_000 for w in windows) for at in drops
    )  # the members dropped only in the shared windows
