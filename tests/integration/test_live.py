"""Faults changed on a running bridge with ``streamchaos ctl``, on the real stack: a drift
added and removed, a delay's held records released by its removal, refusals that change
nothing, a plan kept across a restart; and a guardrail that pauses the experiment."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamchaos.bridge import Bridge
from streamchaos.cli import main
from streamchaos.config import config_from_dict
from streamchaos.evaluation.audit import audit
from streamchaos.kafkatools import produce_all, read_all, unique_name
from streamchaos.ledger import read_ledger
from tests.integration.conftest import bridge_config, shadow_count, wait_until

pytestmark = pytest.mark.integration
TOKEN = "live-token"


def records(topic: str, start: int, n: int) -> list[dict[str, Any]]:
    return [
        {"topic": topic, "key": b"k%d" % i, "value": b'{"i": %d, "amount": 1.0}' % i}
        for i in range(start, start + n)
    ]


def start_bridge(
    bootstrap: str, group: str, source: str, shadow: str, tmp: Path, monkeypatch: Any
) -> Bridge:
    monkeypatch.setenv("LIVE_TOKEN", TOKEN)
    route = {"source": source, "shadow": shadow, "format": "json"}
    cfg = bridge_config(bootstrap, group, [route])
    cfg["ledger"] = {"path": str(tmp / "ledger.jsonl")}
    cfg["control"] = {"token": {"env": "LIVE_TOKEN"}, "plan_file": str(tmp / "plan.json")}
    bridge = Bridge(config_from_dict(cfg, env={})).start()
    bridge.wait_until_assigned(60)
    return bridge


def ctl(bridge: Bridge, *args: str, token: str | None = TOKEN) -> int:
    url = f"http://127.0.0.1:{bridge.metrics_port}"
    return main(["ctl", "--url", url, *(["--token", token] if token else []), *args])


def consumed(bridge: Bridge, source: str) -> float:
    return bridge.counters()[f'streamchaos_records_consumed_total{{route="{source}"}}']


def fault_file(tmp: Path, name: str, fault: dict[str, Any]) -> str:
    path = tmp / f"{name}.json"  # JSON is YAML
    path.write_text(json.dumps(fault))
    return str(path)


def test_a_drift_added_and_removed_live_shifts_only_what_came_between(
    kafka_bootstrap, topic_factory, group_id, tmp_path, monkeypatch, capsys
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    bridge = start_bridge(kafka_bootstrap, group_id, source, shadow, tmp_path, monkeypatch)
    produce_all(kafka_bootstrap, records(source, 0, 300))
    wait_until(lambda: consumed(bridge, source) == 300, 60, "300 consumed")
    drift = {"type": "drift", "name": "shift", "features": {"amount": {"shift": 10}}}
    assert ctl(bridge, "add", "-r", source, "-f", fault_file(tmp_path, "d", drift)) == 0
    produce_all(kafka_bootstrap, records(source, 300, 300))
    wait_until(lambda: consumed(bridge, source) == 600, 60, "600 consumed")
    assert ctl(bridge, "rm", "-r", source, "-n", "shift") == 0
    produce_all(kafka_bootstrap, records(source, 600, 300))
    wait_until(lambda: consumed(bridge, source) == 900, 60, "900 consumed")
    assert bridge.stop() == 0
    values = {}
    for msg in read_all(kafka_bootstrap, shadow, expect=900):
        doc = json.loads(msg.value())
        values[doc["i"]] = doc["amount"]
    assert all(values[i] == 1.0 for i in range(300))
    assert all(values[i] == 11.0 for i in range(300, 600))
    assert all(values[i] == 1.0 for i in range(600, 900))
    ledger = read_ledger(tmp_path / "ledger.jsonl")
    changes = [e for e in ledger if e["kind"] == "plan_change"]
    assert [(c["fault"], c["detail"]["action"]) for c in changes] == [
        ("shift", "add"),
        ("shift", "remove"),
    ]
    assert changes[0]["detail"]["config"]["features"] == {"amount": {"shift": 10.0}}
    ends = [e for e in ledger if e["kind"] == "episode_end"]
    assert len(ends) == 1 and ends[0]["detail"]["reason"] == "removed"
    assert ends[0]["detail"]["injected"] == 300
    report = audit(kafka_bootstrap, source, shadow, tmp_path / "ledger.jsonl")
    assert report.ok and report.plan_changes == 2, report.summary()


def test_removing_a_delay_delivers_what_it_held_refusals_change_nothing_restart_keeps_plan(
    kafka_bootstrap, topic_factory, group_id, tmp_path, monkeypatch, capsys
):
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    bridge = start_bridge(kafka_bootstrap, group_id, source, shadow, tmp_path, monkeypatch)
    hold = {"type": "delay", "name": "hold", "fraction": 1.0, "delay": "10m"}
    assert ctl(bridge, "add", "-r", source, "-f", fault_file(tmp_path, "h", hold)) == 0
    produce_all(kafka_bootstrap, records(source, 0, 200))
    held = f'streamchaos_held_records{{fault="hold",route="{source}"}}'
    wait_until(lambda: bridge.counters().get(held) == 200, 60, "200 held")
    assert shadow_count(kafka_bootstrap, shadow) == 0
    capsys.readouterr()
    # refused: an invalid fault, no token, a wrong one; the plan stays as it was
    bad = fault_file(tmp_path, "bad", {"type": "corrupt", "fraction": 2, "fields": ["amount"]})
    assert ctl(bridge, "add", "-r", source, "-f", bad) == 2
    assert "fraction" in capsys.readouterr().err
    assert ctl(bridge, "rm", "-r", source, "-n", "hold", token=None) == 2
    assert "401" in capsys.readouterr().err
    assert ctl(bridge, "list") == 0
    listed = capsys.readouterr().out
    assert "hold" in listed and "corrupt" not in listed
    # removed: everything it held is delivered
    assert ctl(bridge, "rm", "-r", source, "-n", "hold") == 0
    wait_until(lambda: shadow_count(kafka_bootstrap, shadow) == 200, 60, "200 out")
    keep = {"type": "corrupt", "name": "nan", "fraction": 0.5, "fields": ["amount"]}
    assert ctl(bridge, "add", "-r", source, "-f", fault_file(tmp_path, "k", keep)) == 0
    assert bridge.stop() == 0
    ledger = read_ledger(tmp_path / "ledger.jsonl")
    early = [e for e in ledger if e["kind"] == "injection" and e["fault"] == "hold"]
    assert len(early) == 200 and all(e["detail"]["released_early"] for e in early)
    # a restart keeps the plan: the added corrupt is there, the removed delay is not
    again = start_bridge(kafka_bootstrap, group_id, source, shadow, tmp_path, monkeypatch)
    try:
        capsys.readouterr()
        assert ctl(again, "list") == 0
        listed = capsys.readouterr().out
        assert "nan" in listed and "corrupt" in listed and "hold" not in listed
    finally:
        assert again.stop() == 0
    restored = [e for e in read_ledger(tmp_path / "ledger.jsonl") if e["kind"] == "plan_change"]
    assert restored[-1]["detail"]["action"] == "restore"
    assert restored[-1]["detail"]["config"] == [keep | {"fields": ["amount"]}]


def test_a_guardrail_on_a_slow_consumers_lag_pauses_the_experiment_until_resumed(
    kafka_bootstrap, topic_factory, group_id, tmp_path, monkeypatch
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    slow = unique_name("model")  # the system under test: committed 0, reads nothing more
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": slow, "enable.auto.commit": False}
    )
    consumer.commit(offsets=[TopicPartition(shadow, 0, 0)], asynchronous=False)
    consumer.close()
    monkeypatch.setenv("LIVE_TOKEN", TOKEN)
    nan = {"type": "corrupt", "name": "nan", "fraction": 0.2, "fields": ["amount"]}
    route = {"source": source, "shadow": shadow, "format": "json", "faults": [nan]}
    cfg = bridge_config(kafka_bootstrap, group_id, [route])
    cfg["ledger"] = {"path": str(tmp_path / "ledger.jsonl")}
    cfg["control"] = {"token": {"env": "LIVE_TOKEN"}}
    cfg["alerts"] = {"interval": "200ms"}  # lags are looked at every 5 intervals
    cfg["guardrails"] = [{"type": "consumer_lag", "group": slow, "max": 100}]
    bridge = Bridge(config_from_dict(cfg, env={})).start()
    bridge.wait_until_assigned(60)
    tripped = f'streamchaos_guardrail_tripped{{guardrail="consumer_lag:{slow}"}}'
    active = f'streamchaos_fault_active{{experiment="it",fault="nan",route="{source}"}}'
    try:
        wait_until(lambda: bridge.counters()[active] == 1, 30, "the fault's episode")
        produce_all(kafka_bootstrap, records(source, 0, 500))
        wait_until(lambda: bridge.paused, 60, "the guardrail pausing the experiment")
        wait_until(lambda: bridge.counters()[active] == 0, 30, "the fault switched off")
        assert bridge.counters()[tripped] == 1
        assert ctl(bridge, "resume") == 0  # still behind: the operator's resume stands
        wait_until(lambda: bridge.counters()[active] == 1, 30, "the fault back on")
        assert not bridge.paused and bridge.counters()[tripped] == 0
    finally:
        assert bridge.stop() == 0
    [line] = [e for e in read_ledger(tmp_path / "ledger.jsonl") if e["kind"] == "guardrail"]
    assert line["detail"]["guardrail"] == f"consumer_lag:{slow}"
    assert line["detail"]["value"] > 100 and line["detail"]["limit"] == 100
    assert shadow_count(kafka_bootstrap, shadow) == 500  # paused, never lost


def test_an_alert_on_the_alerts_topic_stops_a_fault_and_a_bad_alert_is_skipped(
    kafka_bootstrap, topic_factory, group_id, tmp_path, caplog
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    alerts = topic_factory(partitions=1)
    stop = {"alert": "Late", "labels": {"team": "fraud"}}
    hold = {"type": "delay", "name": "late", "fraction": 0.5, "delay": "1s", "stop_on": stop}
    route = {"source": source, "shadow": shadow, "faults": [hold]}
    cfg = bridge_config(kafka_bootstrap, group_id, [route])
    cfg["ledger"] = {"path": str(tmp_path / "ledger.jsonl")}
    cfg["alerts"] = {"topic": alerts, "interval": "200ms"}
    bridge = Bridge(config_from_dict(cfg, env={})).start()
    bridge.wait_until_assigned(60)
    active = f'streamchaos_fault_active{{experiment="it",fault="late",route="{source}"}}'
    try:
        wait_until(lambda: bridge.counters()[active] == 1, 30, "the episode")

        def alerted() -> bool:
            """A bad record, another team's alert, then ours; again until it is seen (the
            sentinel reads from the topic's end once its consumer joined)."""
            at_ms = int(time.time() * 1000)
            other = {"at_ms": at_ms, "labels": {"alertname": "Late", "team": "search"}}
            mine = {"at_ms": at_ms, "labels": {"alertname": "Late", "team": "fraud"}}
            values = [b"not json", json.dumps(other).encode(), json.dumps(mine).encode()]
            produce_all(kafka_bootstrap, [{"topic": alerts, "value": v} for v in values])
            time.sleep(0.5)
            return bool(bridge.counters()[active] == 0)

        wait_until(alerted, 60, "the fault stopped by its alert")
    finally:
        assert bridge.stop() == 0
    [end] = [e for e in read_ledger(tmp_path / "ledger.jsonl") if e["kind"] == "episode_end"]
    assert end["detail"]["reason"] == "detected"
    assert end["detail"]["alert"] == {"alertname": "Late", "team": "fraud"}
    assert "alerts topic:" in caplog.text and "skipped" in caplog.text  # the bad record
