"""The bridge copies records faithfully and commits only what landed (invariant 1)."""

from __future__ import annotations

import signal
import urllib.request
from collections import Counter
from threading import Thread

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.config import config_from_dict
from streamchaos.errors import BridgeError
from streamchaos.kafkatools import (
    committed_offsets,
    end_offsets,
    produce_all,
    read_all,
)
from tests.integration.conftest import (
    HEADERS,
    SlowProducer,
    bridge_config,
    keyed_records,
    lineage_of,
    origin_of,
    route_config,
    shadow_count,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("lineage", ["ledger lines", "a header on each record"])
def test_20k_records_arrive_identical(kafka_bootstrap, topic_factory, group_id, lineage, tmp_path):
    """Key, value, timestamp, partition and headers as they came; each shadow record
    traced to its source record by the ledger's lineage lines (the default: the records
    carry nothing added) or by the lineage header."""
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    sent = list(keyed_records(source, 20_000, partitions=3))
    produce_all(kafka_bootstrap, sent)
    headers = lineage != "ledger lines"
    raw = route_config(kafka_bootstrap, group_id, source, shadow)
    raw["ledger"] = {"path": str(tmp_path / "ledger.jsonl")}
    raw["bridge"] = HEADERS if headers else {}
    registry = CollectorRegistry()

    assert Bridge(config_from_dict(raw, env={}), registry=registry).run(idle_exit=3) == 0

    got = read_all(kafka_bootstrap, shadow, expect=20_000)
    assert len(got) == 20_000
    lines = lineage_of(tmp_path / "ledger.jsonl")
    by_origin = {origin_of(m, None if headers else lines): m for m in got}
    assert len(by_origin) == 20_000
    source_msgs = read_all(kafka_bootstrap, source, expect=20_000)
    for src in source_msgs:
        out = by_origin[(src.partition(), src.offset())]
        assert out.key() == src.key()
        assert out.value() == src.value()
        assert out.timestamp() == src.timestamp()
        assert out.partition() == src.partition()
        origin = ("streamchaos-origin", f"{source}/{src.partition()}/{src.offset()}".encode())
        assert out.headers() == ([*src.headers(), origin] if headers else src.headers())
    assert committed_offsets(kafka_bootstrap, group_id, source) == end_offsets(
        kafka_bootstrap, source
    )
    value = registry.get_sample_value
    assert value("streamchaos_records_consumed_total", {"route": source}) == 20_000
    assert value("streamchaos_records_produced_total", {"route": source}) == 20_000
    assert value("streamchaos_produce_errors_total", {"route": source}) == 0
    assert value("streamchaos_commit_lag_records", {"route": source}) == 0


def test_sigkill_then_restart_loses_nothing(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    cfg = route_config(kafka_bootstrap, group_id, source, shadow)
    cfg["bridge"] = {"commit_interval": "200ms", **HEADERS}
    producer = SlowProducer(kafka_bootstrap, source, 20_000, 3, chunks=20, pause=0.25)
    first = bridge_process(cfg)
    first.wait_for_log("assigned")
    producer.start()
    wait_until(lambda: shadow_count(kafka_bootstrap, shadow) >= 3000, 60, "first records")
    first.signal(signal.SIGKILL)
    first.wait()
    at_kill = shadow_count(kafka_bootstrap, shadow)
    producer.join(120)
    assert producer.error is None
    assert at_kill < 20_000, "the kill must land part-way through the stream"

    second = bridge_process(cfg, idle_exit=4)
    assert second.wait() == 0, second.log()
    assert "consumed=0 " not in second.log(), second.log()

    seen = Counter(origin_of(m) for m in read_all(kafka_bootstrap, shadow))
    ends = end_offsets(kafka_bootstrap, source)
    expected = {(p, o) for p, end in ends.items() for o in range(end)}
    assert sum(ends.values()) == 20_000
    assert expected - set(seen) == set(), "offsets missing from the shadow"
    duplicates = sum(n - 1 for n in seen.values())
    print(f"SIGKILL restart: {duplicates} duplicates re-delivered, 0 missing")
    assert committed_offsets(kafka_bootstrap, group_id, source) == ends


def test_sigterm_exits_0_and_commits_exactly_what_was_delivered(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    cfg = bridge_config(
        kafka_bootstrap, group_id, [{"source": source, "shadow": shadow}], bridge=HEADERS
    )
    producer = SlowProducer(kafka_bootstrap, source, 20_000, 3, chunks=20, pause=0.25)
    bridge = bridge_process(cfg)
    bridge.wait_for_log("assigned")
    producer.start()
    wait_until(lambda: shadow_count(kafka_bootstrap, shadow) >= 3000, 60, "first records")
    bridge.signal(signal.SIGTERM)
    assert bridge.wait() == 0, bridge.log()
    producer.join(120)

    committed = committed_offsets(kafka_bootstrap, group_id, source)
    delivered: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for msg in read_all(kafka_bootstrap, shadow):
        part, off = origin_of(msg)
        delivered[part].append(off)
    assert sum(map(len, delivered.values())) < 20_000, "SIGTERM must land mid-stream"
    for part, offsets in delivered.items():
        assert sorted(offsets) == list(range(committed[part])), f"partition {part}"


def test_two_bridges_split_partitions_and_deliver_everything(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    source = topic_factory(partitions=6)
    shadow = topic_factory(partitions=6, suffix=".shadow")
    cfg = bridge_config(
        kafka_bootstrap, group_id, [{"source": source, "shadow": shadow}], bridge=HEADERS
    )
    first = bridge_process(cfg, idle_exit=8)
    first.wait_for_log("assigned")
    second = bridge_process(cfg, idle_exit=8)
    second.wait_for_log(f"assigned {source}")
    first.wait_for_log("revoked")
    producer = SlowProducer(kafka_bootstrap, source, 30_000, 6, chunks=10, pause=0.2)
    producer.run()
    assert producer.error is None
    assert first.wait() == 0, first.log()
    assert second.wait() == 0, second.log()

    for proc in (first, second):
        consumed = [line for line in proc.log().splitlines() if "consumed=" in line]
        assert consumed and "consumed=0 " not in consumed[-1], proc.log()
    seen = Counter(origin_of(m) for m in read_all(kafka_bootstrap, shadow))
    ends = end_offsets(kafka_bootstrap, source)
    assert set(seen) == {(p, o) for p, end in ends.items() for o in range(end)}
    assert committed_offsets(kafka_bootstrap, group_id, source) == ends


@pytest.mark.parametrize("ledger", [False, True])
def test_failed_delivery_is_never_committed(
    kafka_bootstrap, topic_factory, group_id, ledger, tmp_path
):
    """A record the broker refuses is never committed, with or without a ledger (whose
    lines make no difference to which records get a delivery report)."""
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow", config={"max.message.bytes": "2000"})
    records = [{"topic": source, "value": b"small-%d" % i} for i in range(10)]
    records.append({"topic": source, "value": b"x" * 5000})
    produce_all(kafka_bootstrap, records)
    raw = route_config(kafka_bootstrap, group_id, source, shadow)
    if ledger:
        raw["ledger"] = {"path": str(tmp_path / "ledger.jsonl")}
    cfg = config_from_dict(raw, env={})
    registry = CollectorRegistry()

    assert Bridge(cfg, registry=registry).run(idle_exit=3) == 1

    errors = registry.get_sample_value("streamchaos_produce_errors_total", {"route": source})
    assert errors is not None and errors >= 1  # the records not proven landed
    committed = committed_offsets(kafka_bootstrap, group_id, source)[0]
    assert committed <= 10, "the oversized record at offset 10 must not be committed"
    assert len(read_all(kafka_bootstrap, shadow)) >= 11 - errors


def test_create_shadow_and_narrower_shadow(kafka_bootstrap, topic_factory, group_id):
    wide = topic_factory(partitions=3)
    narrow_source = topic_factory(partitions=3)
    narrow_shadow = topic_factory(partitions=1, suffix=".shadow")
    created = f"{wide}.shadow"
    produce_all(kafka_bootstrap, keyed_records(wide, 300, 3))
    produce_all(kafka_bootstrap, keyed_records(narrow_source, 300, 3))
    routes = [
        {"source": wide, "shadow": created, "create_shadow": True},
        {"source": narrow_source, "shadow": narrow_shadow},
    ]
    cfg = config_from_dict(bridge_config(kafka_bootstrap, group_id, routes), env={})
    try:
        assert Bridge(cfg).run(idle_exit=3) == 0
        assert len(end_offsets(kafka_bootstrap, created)) == 3
        assert len(read_all(kafka_bootstrap, created, expect=300)) == 300
        narrow = read_all(kafka_bootstrap, narrow_shadow, expect=300)
        assert len(narrow) == 300 and {m.partition() for m in narrow} == {0}
    finally:
        from streamchaos.kafkatools import delete_topics

        delete_topics(kafka_bootstrap, [created])


def test_missing_shadow_is_a_clear_startup_error(kafka_bootstrap, topic_factory, group_id):
    source = topic_factory(partitions=1)
    cfg = config_from_dict(
        route_config(kafka_bootstrap, group_id, source, "nope.shadow"),
        env={},
    )
    with pytest.raises(BridgeError, match=r"routes\[0\]\.shadow: topic 'nope.shadow' does not"):
        Bridge(cfg).run(idle_exit=1)


def test_metrics_endpoint_serves_contract_names(kafka_bootstrap, topic_factory, group_id):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    produce_all(kafka_bootstrap, keyed_records(source, 50, 1))
    cfg = config_from_dict(route_config(kafka_bootstrap, group_id, source, shadow), env={})
    bridge = Bridge(cfg)
    thread = Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: bridge.metrics_port is not None, 30, "metrics server")
        wait_until(
            lambda: (
                bridge.registry.get_sample_value(
                    "streamchaos_records_produced_total", {"route": source}
                )
                == 50
            ),
            60,
            "50 records produced",
        )
        url = f"http://127.0.0.1:{bridge.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        bridge.stop()
        thread.join(60)
    for name in (
        "streamchaos_records_consumed_total",
        "streamchaos_records_produced_total",
        "streamchaos_produce_errors_total",
        "streamchaos_commit_lag_records",
    ):
        assert f'{name}{{route="{source}"}}' in text


def test_a_record_the_client_refuses_is_a_failed_delivery_not_a_crash(
    kafka_bootstrap, topic_factory, group_id
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    records = [{"topic": source, "value": b"small-%d" % i} for i in range(10)]
    records.append({"topic": source, "value": b"x" * 5000})
    records += [{"topic": source, "value": b"after-%d" % i} for i in range(10)]
    produce_all(kafka_bootstrap, records)
    raw = route_config(kafka_bootstrap, group_id, source, shadow)
    raw["kafka"]["producer"] = {"message.max.bytes": 2000}  # produce() refuses the big one
    registry = CollectorRegistry()

    assert Bridge(config_from_dict(raw, env={}), registry=registry).run(idle_exit=3) == 1

    value = registry.get_sample_value
    assert value("streamchaos_produce_errors_total", {"route": source}) == 1
    assert value("streamchaos_records_consumed_total", {"route": source}) == 21
    assert committed_offsets(kafka_bootstrap, group_id, source)[0] <= 10
    assert len(read_all(kafka_bootstrap, shadow, expect=20)) == 20
