"""Faults end to end on the real broker: timing, ground truth, audit, determinism."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.cli import main as cli
from streamchaos.config import config_from_dict
from streamchaos.errors import BridgeError, ConfigError
from streamchaos.evaluation.audit import audit
from streamchaos.evaluation.scorer import score_run
from streamchaos.kafkatools import (
    committed_offsets,
    end_offsets,
    produce_all,
    read_all,
)
from streamchaos.ledger import read_ledger, read_ledger_topic
from tests.integration.conftest import (
    HEADERS,
    bridge_config,
    keyed_records,
    lineage_of,
    origin_of,
    route_config,
    wait_until,
)
from tests.integration.experiment import free_port

pytestmark = pytest.mark.integration

# stale_replay first: its ring buffer sees records in consumption order, whereas records
# a delay releases reach later stages at times the clock decides.
MIXED = [
    {"type": "stale_replay", "fraction": 0.03, "lag": 0, "mode": "inject"},
    {"type": "drop", "fraction": 0.03},
    {"type": "duplicate", "fraction": 0.05, "copies": 2},
    {"type": "delay", "fraction": 0.05, "distribution": "uniform", "min": 0.1, "max": 0.4},
    {"type": "reorder", "fraction": 0.05, "window": 4, "max_wait": "200ms"},
]


class CheckedBridge(Bridge):
    """Records every commit point that would pass a record a fault still holds (checked
    as the commit asks for them: after a flush has completed batches, when it flushes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.violations: list[str] = []
        to_commit = self.tracker.to_commit

        def checked(tps=None):
            points = to_commit(tps)
            for tp, point in points.items():
                floor = self._fwd.held_floor(tp) if self._fwd else None
                if floor is not None and point > floor:
                    self.violations.append(f"{tp}: commit {point} passes held {floor}")
            return points

        self.tracker.to_commit = checked


def ledger_lines(path: Path) -> list[dict]:
    return read_ledger(path)


def run_bridge(
    kafka_bootstrap, group, source, shadow, faults, ledger, idle=3, seed=7, expect=0, bridge=None
):
    """A bridge run to its idle exit with exit code ``expect``; ``ledger``: the JSONL
    file's path, or the ledger settings (``path`` and/or ``topic``); ``bridge``: its
    ``bridge:`` settings."""
    raw = bridge_config(
        kafka_bootstrap,
        group,
        [{"source": source, "shadow": shadow, "faults": faults}],
        seed=seed,
        ledger=ledger if isinstance(ledger, dict) else {"path": str(ledger)},
        bridge=bridge or {},
    )
    bridge = CheckedBridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    assert bridge.run(idle_exit=idle) == expect
    return bridge


def test_delay_ten_percent_arrives_late_and_is_ledgered(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    produce_all(kafka_bootstrap, keyed_records(source, 3000, 1))
    ledger = tmp_path / "ledger.jsonl"
    faults = [{"type": "delay", "fraction": 0.1, "delay": "500ms"}]
    bridge = run_bridge(kafka_bootstrap, group_id, source, shadow, faults, ledger)

    out = read_all(kafka_bootstrap, shadow, expect=3000)
    lineage = lineage_of(ledger)
    order = [origin_of(m, lineage)[1] for m in sorted(out, key=lambda m: m.offset())]
    assert sorted(order) == list(range(3000))
    late = set()
    highest = -1
    for off in order:  # a record is late when a later source offset landed before it
        if off < highest:
            late.add(off)
        highest = max(highest, off)
    entries = [e for e in ledger_lines(ledger) if e["kind"] == "injection"]
    delayed = {e["source"]["offset"] for e in entries}
    assert len(delayed) == len(entries)
    assert 200 < len(delayed) < 400  # 10 % of 3000 within binomial tolerance
    assert late <= delayed and len(delayed - late) <= 2  # the last few may have no successor
    by_shadow_offset = {m.offset(): origin_of(m, lineage)[1] for m in out}
    for e in entries:
        assert e["detail"]["delay_ms"] == 500
        assert by_shadow_offset[e["shadow"]["offset"]] == e["source"]["offset"]
    assert bridge.violations == []
    counted = bridge.registry.get_sample_value(
        "streamchaos_injections_total",
        {"experiment": "it", "route": source, "fault": "delay", "type": "delay"},
    )
    assert counted == len(entries)
    kinds = Counter(e["kind"] for e in ledger_lines(ledger))
    assert kinds["episode_start"] == kinds["episode_end"] == 1
    assert committed_offsets(kafka_bootstrap, group_id, source) == {0: 3000}


def held_records(port: int) -> float:
    """``streamchaos_held_records``, summed, from the bridge's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith("streamchaos_held_records{")
    )


def test_sigterm_releases_held_records(
    kafka_bootstrap, topic_factory, group_id, bridge_process, tmp_path
):
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    port = free_port()
    cfg = route_config(
        kafka_bootstrap,
        group_id,
        source,
        shadow,
        faults=[{"type": "delay", "fraction": 1.0, "delay": "10m"}],
    )
    cfg["metrics"] = {"port": port}
    cfg["ledger"] = {"path": str(tmp_path / "ledger.jsonl")}
    bridge = bridge_process(cfg)
    bridge.wait_for_log("assigned")
    produce_all(kafka_bootstrap, keyed_records(source, 200, 2))
    wait_until(lambda: held_records(port) == 200, 60, "200 held records")
    assert sum(end_offsets(kafka_bootstrap, shadow).values()) == 0
    assert committed_offsets(kafka_bootstrap, group_id, source) in (
        {0: -1001, 1: -1001},
        {0: 0, 1: 0},
    )
    bridge.signal(signal.SIGTERM)
    assert bridge.wait() == 0, bridge.log()
    lineage = lineage_of(tmp_path / "ledger.jsonl")
    assert {origin_of(m, lineage) for m in read_all(kafka_bootstrap, shadow, expect=200)} == {
        (p, o) for p in range(2) for o in range(100)
    }
    assert committed_offsets(kafka_bootstrap, group_id, source) == {0: 100, 1: 100}


def test_without_a_ledger_the_same_records_land_and_are_counted(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    """Without a ledger no injected record needs a delivery report of its own (only each
    run's first and last do). With records held, dropped, duplicated and replayed, it
    must deliver, count and commit exactly what a run with a ledger does (traced by a
    lineage header on every record, the same in both runs)."""
    source = topic_factory(partitions=2)
    produce_all(kafka_bootstrap, keyed_records(source, 4000, 2))
    runs = {}
    for name, ledger in (("ledger", {"path": str(tmp_path / "l.jsonl")}), ("none", {})):
        shadow = topic_factory(partitions=2, suffix=".shadow")
        group = f"{group_id}.{name}"
        bridge = run_bridge(kafka_bootstrap, group, source, shadow, MIXED, ledger, bridge=HEADERS)
        assert bridge.violations == []
        assert bridge.ledger is not None and bridge.ledger.active == (name == "ledger")
        assert committed_offsets(kafka_bootstrap, group, source) == {0: 2000, 1: 2000}
        landed = sum(end_offsets(kafka_bootstrap, shadow).values())
        origins = Counter(map(origin_of, read_all(kafka_bootstrap, shadow, expect=landed)))
        counts = {
            f["type"]: bridge.registry.get_sample_value(
                "streamchaos_injections_total",
                {"experiment": "it", "route": source, "fault": f["type"], "type": f["type"]},
            )
            for f in MIXED
        }
        produced = bridge.registry.get_sample_value(
            "streamchaos_records_produced_total", {"route": source}
        )
        runs[name] = (origins, counts, produced == landed)
    assert runs["none"] == runs["ledger"]
    assert all(runs["none"][1].values()) and runs["none"][2]


def test_audit_balances_mixed_faults_and_catches_a_removed_record(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    produce_all(kafka_bootstrap, keyed_records(source, 6000, 3))
    ledger = tmp_path / "ledger.jsonl"
    bridge = run_bridge(kafka_bootstrap, group_id, source, shadow, MIXED, ledger)
    assert bridge.violations == []

    report = audit(kafka_bootstrap, source, shadow, ledger)
    assert report.ok, report.summary()
    types = Counter(e["type"] for e in ledger_lines(ledger) if e["kind"] == "injection")
    assert set(types) == {"delay", "reorder", "duplicate", "drop", "stale_replay"}
    for fault in MIXED:
        name = fault["type"]
        counted = bridge.registry.get_sample_value(
            "streamchaos_injections_total",
            {"experiment": "it", "route": source, "fault": name, "type": name},
        )
        assert counted == types[name], name

    tampered = topic_factory(partitions=3, suffix=".shadow")
    records = read_all(kafka_bootstrap, shadow)
    victim = records[len(records) // 2]
    produce_all(
        kafka_bootstrap,
        (
            {
                "topic": tampered,
                "value": m.value(),
                "key": m.key(),
                "partition": m.partition(),
                "headers": m.headers(),
            }
            for m in records
            if m is not victim
        ),
    )
    args = [
        "audit",
        "--source",
        source,
        "--shadow",
        tampered,
        "--ledger",
        str(ledger),
        "--bootstrap-servers",
        kafka_bootstrap,
    ]
    assert cli(args) == 1
    assert cli([*args[:4], shadow, *args[5:]]) == 0


def test_same_config_same_input_same_ledger(kafka_bootstrap, topic_factory, tmp_path):
    source = topic_factory(partitions=2)
    produce_all(kafka_bootstrap, keyed_records(source, 4000, 2))
    faults = MIXED[:4]  # reorder's partial-window flush is time-driven
    ledgers = []
    for run in range(2):
        shadow = topic_factory(partitions=2, suffix=".shadow")
        ledger = tmp_path / f"ledger{run}.jsonl"
        run_bridge(kafka_bootstrap, f"g{run}.{source}", source, shadow, faults, ledger)
        ledgers.append(
            sorted(
                json.dumps(
                    {k: v for k, v in e.items() if k not in ("at", "shadow")}, sort_keys=True
                )
                for e in ledger_lines(ledger)
                if e["kind"] == "injection"
            )
        )
    assert ledgers[0] == ledgers[1]
    assert len(ledgers[0]) > 100


def test_sigusr1_is_the_kill_switch(kafka_bootstrap, topic_factory, group_id, bridge_process):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    cfg = route_config(
        kafka_bootstrap,
        group_id,
        source,
        shadow,
        faults=[{"type": "delay", "fraction": 1.0, "delay": "10m"}],
    )
    port = free_port()
    cfg["metrics"] = {"port": port}
    bridge = bridge_process(cfg)
    bridge.wait_for_log("assigned")
    produce_all(kafka_bootstrap, keyed_records(source, 50, 1))
    wait_until(lambda: held_records(port) == 50, 60, "50 held records")
    assert sum(end_offsets(kafka_bootstrap, shadow).values()) == 0
    bridge.signal(signal.SIGUSR1)
    bridge.wait_for_log("paused: all faults off")
    assert len(read_all(kafka_bootstrap, shadow, expect=50)) == 50
    bridge.signal(signal.SIGTERM)
    assert bridge.wait() == 0


def test_ledger_topic_holds_the_same_lines_as_the_file(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    """Both sinks of the ground truth carry the same journal: the topic's records are the
    file's lines, in order, keyed by the experiment."""
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    ledger_topic = topic_factory(prefix="ledger")
    produce_all(kafka_bootstrap, keyed_records(source, 2000, 2))
    path = tmp_path / "ledger.jsonl"
    faults = [
        {"type": "drop", "fraction": 0.05},
        {"type": "delay", "fraction": 0.05, "delay": "100ms"},
    ]
    sinks = {"path": str(path), "topic": ledger_topic}
    run_bridge(kafka_bootstrap, group_id, source, shadow, faults, sinks)
    lines = path.read_text(encoding="utf-8").splitlines()
    injected = sum(json.loads(line)["kind"] == "injection" for line in lines)
    assert injected > 100  # ~10 % of 2000
    records = read_all(kafka_bootstrap, ledger_topic, expect=len(lines))
    assert [m.value().decode() for m in records] == lines
    assert {m.key() for m in records} == {b"it"}
    assert committed_offsets(kafka_bootstrap, group_id, source) == end_offsets(
        kafka_bootstrap, source
    )
    # audit and score read the topic as they read the file
    broker = ["--bootstrap-servers", kafka_bootstrap]
    audit_args = ["audit", "--source", source, "--shadow", shadow, *broker]
    assert cli([*audit_args, "--ledger-topic", ledger_topic, "--experiment", "it"]) == 0
    # another experiment's journal is empty: a usage error, not an audit that passes
    assert cli([*audit_args, "--ledger-topic", ledger_topic, "--experiment", "other"]) == 2
    assert cli([*audit_args, "--ledger-topic", ledger_topic + ".typo"]) == 2
    with pytest.raises(BridgeError, match="does not exist"):  # and it was not created
        read_all(kafka_bootstrap, ledger_topic + ".typo", timeout=2)
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("")
    cards = [
        score_run(ledger, alerts=alerts).card.to_dict()
        for ledger in (path, read_ledger_topic(kafka_bootstrap, ledger_topic))
    ]
    assert cards[0] == cards[1]
    assert cards[0]["episodes"] == 2
    assert cli(["score", "--ledger-topic", ledger_topic, "--alerts", str(alerts), *broker]) == 0


def test_ledger_lines_that_fail_keep_their_offsets_uncommitted(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    """A ledger topic the broker refuses (here: its records may not exceed 100 bytes) must
    not let the bridge commit past the records whose ground truth it lost (injections and
    where records landed): the shadow gets every record, the run exits 1, and each
    partition's committed offset stays at or before its first injection, so a restart
    injects and ledgers those records again."""
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    ledger_topic = topic_factory(prefix="ledger", config={"max.message.bytes": "100"})
    produce_all(kafka_bootstrap, keyed_records(source, 1000, 2))
    path = tmp_path / "ledger.jsonl"
    faults = [{"type": "duplicate", "fraction": 0.05, "copies": 1}]
    sinks = {"path": str(path), "topic": ledger_topic}
    bridge = run_bridge(kafka_bootstrap, group_id, source, shadow, faults, sinks, expect=1)
    entries = [e for e in ledger_lines(path) if e["kind"] == "injection"]
    assert entries
    assert len(read_all(kafka_bootstrap, shadow, expect=1000 + len(entries))) == 1000 + len(entries)
    first = {}
    for e in entries:
        part = e["source"]["partition"]
        first[part] = min(first.get(part, e["source"]["offset"]), e["source"]["offset"])
    committed = committed_offsets(kafka_bootstrap, group_id, source)
    for part, offset in first.items():
        assert committed[part] <= offset, (part, committed[part], offset)
    assert read_all(kafka_bootstrap, ledger_topic, timeout=2) == []
    errors = bridge.registry.get_sample_value  # the route's lines: injections and lineage
    lines = [e for e in ledger_lines(path) if e["kind"] in ("injection", "lineage")]
    assert errors("streamchaos_produce_errors_total", {"route": source}) == len(lines)


def test_a_bad_ledger_topic_record_is_named(kafka_bootstrap, topic_factory):
    topic = topic_factory(prefix="ledger")
    good = json.dumps({"experiment": "it", "kind": "episode_start", "at": 1, "detail": {}})
    produce_all(
        kafka_bootstrap,
        [
            {"topic": topic, "key": b"it", "value": good.encode()},
            {"topic": topic, "key": b"other", "value": b"not json"},
            {"topic": topic, "key": b"it", "value": b"{broken"},
        ],
    )
    with pytest.raises(ConfigError, match="no ledger entries of experiment 'other-x'"):
        read_ledger_topic(kafka_bootstrap, topic, experiment="other-x")
    with pytest.raises(ConfigError, match=rf"{topic}\[0\]@1: not JSON"):
        read_ledger_topic(kafka_bootstrap, topic, experiment="other")
    with pytest.raises(ConfigError, match=rf"{topic}\[0\]@2: not JSON"):
        read_ledger_topic(kafka_bootstrap, topic, experiment="it")
