"""``delivery: exactly-once`` on the real broker: what a ``read_committed`` consumer of the
shadow sees is each source record's outputs exactly once, across SIGKILLs and rebalances."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.cli import main as cli
from streamchaos.config import config_from_dict
from streamchaos.evaluation.audit import audit
from streamchaos.kafkatools import committed_offsets, create_topics, end_offsets, produce_all
from streamchaos.ledger import read_ledger, read_ledger_topic
from streamchaos.lineage import LINEAGE_HEADER
from tests.integration.conftest import (
    SlowProducer,
    bridge_config,
    keyed_records,
    stop_all,
    wait_committed,
    wait_until,
)

pytestmark = pytest.mark.integration

FAULTS = [  # records held (delay, reorder, spaced copies, an outage's backlog), and not
    {"type": "drop", "fraction": 0.03},
    {"type": "corrupt", "mode": "nan", "fields": ["amount"], "fraction": 0.05},
    {"type": "delay", "fraction": 0.05, "distribution": "uniform", "min": 0.2, "max": 1.5},
    {"type": "reorder", "fraction": 0.05, "window": 4, "max_wait": "300ms"},
    {"type": "duplicate", "fraction": 0.05, "copies": 2, "spacing": "400ms"},
    {"type": "outage", "schedule": {"start": "2s", "every": "5s", "on": "1s"}},
]


def config(bootstrap, group, source, shadow, ledger, delivery, member="m0", **extra):
    raw = bridge_config(
        bootstrap,
        group,
        [{"source": source, "shadow": shadow, "format": "json", "faults": FAULTS}],
        delivery=delivery,
        ledger=ledger,
        bridge={"lineage_header": LINEAGE_HEADER},
        **extra,
    )
    raw["kafka"]["transactional_id"] = f"{group}.{member}"
    return raw


def changed(report):
    """Drops less extra copies, as the ledger has them."""
    return report.injections[("drop", "drop")] - report.injections[("duplicate", "extra")]


def test_one_bridge_commits_its_outputs_and_ledger_in_transactions(
    kafka_bootstrap, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    ledger_topic = topic_factory(partitions=1, suffix=".ledger")
    produce_all(kafka_bootstrap, keyed_records(source, 3000, 3))
    path = tmp_path / "ledger.jsonl"
    ledger = {"path": str(path), "topic": ledger_topic}
    raw = config(kafka_bootstrap, group_id, source, shadow, ledger, "exactly-once")
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    assert bridge.run(idle_exit=3) == 0
    assert committed_offsets(kafka_bootstrap, group_id, source) == end_offsets(
        kafka_bootstrap, source
    )
    from_topic = read_ledger_topic(kafka_bootstrap, ledger_topic, experiment="it")
    from_file = read_ledger(path)
    as_text = lambda entries: sorted(json.dumps(e, sort_keys=True) for e in entries)  # noqa: E731
    assert as_text(from_file) == as_text(from_topic)  # the file holds the committed lines
    kinds = {e["kind"] for e in from_file}
    assert {"injection", "episode_start", "episode_end"} <= kinds
    report = audit(kafka_bootstrap, source, shadow, from_topic)
    assert report.ok, report.summary()
    assert report.shadow_records == 3000 - changed(report)


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_members_killed_mid_stream_leave_no_duplicate_under_exactly_once(
    kafka_bootstrap, topic_factory, group_id, bridge_process, delivery
):
    """3 members, 6 partitions, a live stream, SIGKILLs of random members, each restarted
    at once. Exactly-once: the audit finds every source record exactly 1 + extras - drops
    times. At-least-once, the same run shows the crash copies (so the test can fail)."""
    source = topic_factory(partitions=6)
    shadow = topic_factory(partitions=6, suffix=".shadow")
    ledger_topic = topic_factory(partitions=1, suffix=".ledger")
    configs = [
        config(
            kafka_bootstrap, group_id, source, shadow, {"topic": ledger_topic}, delivery, f"m{i}"
        )
        for i in range(3)
    ]
    members = [bridge_process(cfg) for cfg in configs]
    for member in members:
        member.wait_for_log("assigned", timeout=60)
    stream = SlowProducer(kafka_bootstrap, source, 24_000, 6, chunks=40, pause=0.5)
    stream.start()
    draw = random.Random(11)
    kills = 10 if delivery == "exactly-once" else 4
    for _ in range(kills):
        time.sleep(draw.uniform(1.0, 2.5))
        i = draw.randrange(3)
        members[i].kill()
        members[i] = bridge_process(configs[i])
    stream.join(120)
    assert stream.error is None and not stream.is_alive()
    total = sum(end_offsets(kafka_bootstrap, source).values())
    assert total == 24_000
    wait_committed(kafka_bootstrap, group_id, source, 120)
    stop_all(members)
    entries = read_ledger_topic(kafka_bootstrap, ledger_topic, experiment="it")
    report = audit(kafka_bootstrap, source, shadow, entries, timeout=120)
    assert not report.missing, report.summary()
    if delivery == "exactly-once":
        assert report.ok, report.summary()
        assert report.shadow_records == total - changed(report)
        command = ["audit", "--source", source, "--shadow", shadow, "--ledger-topic", ledger_topic]
        command += ["--experiment", "it", "--bootstrap-servers", kafka_bootstrap]
        assert cli(command) == 0
        for kind in ("episode_start", "episode_end"):  # one clock: each episode once
            lines = [
                (e["fault"], e["detail"].get("scheduled_at")) for e in entries if e["kind"] == kind
            ]
            assert len(lines) == len(set(lines)), kind
            assert sum(fault == "outage" for fault, _ in lines) > 2, kind
    else:  # every surplus record repeats one before it: the audit names them crash copies
        assert report.unexpected_duplicates, "no crash copy: the kills hit nothing in flight"
        surplus = sum(d.actual - d.expected for d in report.unexpected_duplicates)
        assert report.crash_copies == surplus
        assert f"crash copies: {surplus} shadow records" in report.summary()


def test_a_broker_killed_and_restarted_mid_stream_loses_and_repeats_nothing(
    private_broker, bridge_process
):
    """The broker SIGKILLed under a live stream and started again on its data. A bridge
    whose transaction could not commit exits 1 and is restarted, as a supervisor would:
    the shadow still holds every source record exactly 1 + extras - drops times."""
    bootstrap = private_broker["bootstrap"]
    source, shadow, ledger = "eos.features", "eos.features.shadow", "eos.ledger"
    create_topics(bootstrap, [source, shadow], 3)
    cfg = config(bootstrap, "eos-broker", source, shadow, {"topic": ledger}, "exactly-once")
    member = bridge_process(cfg)
    member.wait_for_log("assigned", timeout=60)
    stream = SlowProducer(bootstrap, source, 12_000, 3, chunks=24, pause=0.5)
    stream.start()
    wait_until(
        lambda: sum(committed_offsets(bootstrap, "eos-broker", source).values()) > 1000,
        60,
        "a first commit",
    )
    private_broker["kill"]()
    time.sleep(2)
    private_broker["restart"]()
    restarts, deadline = 0, time.monotonic() + 180
    while committed_offsets(bootstrap, "eos-broker", source) != end_offsets(bootstrap, source):
        assert time.monotonic() < deadline, member.log()[-3000:]
        if member.proc.poll() is not None:  # an aborted transaction stopped it
            assert member.proc.returncode == 1, member.log()[-3000:]
            member = bridge_process(cfg)
            restarts += 1
        time.sleep(0.5)
    stream.join(60)
    assert stream.error is None
    stop_all([member])
    entries = read_ledger_topic(bootstrap, ledger, experiment="it")
    report = audit(bootstrap, source, shadow, entries, timeout=120)
    assert report.ok, report.summary()
    assert report.source_records == 12_000
    assert report.shadow_records == 12_000 - changed(report)


def test_a_member_that_stalls_past_its_session_cannot_commit_afterwards(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    """Member A is stopped (SIGSTOP) past its session timeout while a live stream goes on;
    its partitions move to B. When A runs again, its open transaction is fenced: it aborts
    and exits 1, and the shadow holds every record exactly as the ledger says."""
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    ledger = topic_factory(partitions=1, suffix=".ledger")
    first = config(kafka_bootstrap, group_id, source, shadow, {"topic": ledger}, "exactly-once")
    second = config(
        kafka_bootstrap, group_id, source, shadow, {"topic": ledger}, "exactly-once", "m1"
    )
    stalled = bridge_process(first)
    stalled.wait_for_log("assigned", timeout=60)
    stream = SlowProducer(kafka_bootstrap, source, 8000, 2, chunks=40, pause=0.4)
    stream.start()
    time.sleep(2)
    stalled.signal(signal.SIGSTOP)  # a stall: a GC pause, a frozen VM
    taker = bridge_process(second)
    wait_until(lambda: f"{source}[1]" in taker.log(), 60, "the partitions moved on")
    stalled.signal(signal.SIGCONT)
    assert stalled.wait(60) == 1
    assert "exactly-once: the transaction could not commit" in stalled.log()
    stream.join(60)
    assert stream.error is None
    wait_committed(kafka_bootstrap, group_id, source, 60)
    stop_all([taker])
    entries = read_ledger_topic(kafka_bootstrap, ledger, experiment="it")
    report = audit(kafka_bootstrap, source, shadow, entries, timeout=120)
    assert report.ok, report.summary()
    assert report.shadow_records == 8000 - changed(report)
