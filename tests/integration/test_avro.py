"""Avro faults against a real Schema Registry, read back with confluent-kafka's own
AvroDeserializer — what a user's consumer would see."""

from __future__ import annotations

import json
import math
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.config import config_from_dict
from streamchaos.evaluation.audit import audit
from streamchaos.kafkatools import produce_all, read_all
from streamchaos.ledger import read_ledger
from tests.integration.avro_helpers import V1, Reader, client, produce_avro, row
from tests.integration.conftest import bridge_config, lineage_of, origin_of, route_config

pytestmark = pytest.mark.integration
N = 150

WIRE = ["bad_magic", "unknown_schema_id", "truncate", "append_garbage", "bit_flip"]
CONTRACT = {
    "drop_field": {"field": "device"},
    "rename_field": {"field": "device", "to": "platform"},
    "change_type": {"field": "amount"},
    "make_nullable": {"field": "count"},
    "unknown_enum_symbol": {"field": "country"},
    "old_version": {},
}
CORRUPT = {
    "null": {"fields": ["amount"]},
    "nan": {"fields": ["amount"]},
    "inf": {"fields": ["amount"], "negative": True},
    "type_flip": {"fields": ["is_fraud", "count"]},
    "unseen_category": {"fields": ["device", "country"]},
    "empty_string": {"fields": ["user"]},
    "drop_feature": {"fields": ["device"]},
    "stuck": {"fields": ["amount"]},
    "unit_scale": {"fields": ["amount"], "factor": 100},
    "spike": {"fields": ["count"], "k": 6},
    "timestamp_skew": {"fields": ["event_time"], "hours": 5},
}


def run_routes(bootstrap, url, topic_factory, group, faults_by_name, ledger, fraction=0.3):
    """One bridge run, one route per named fault; returns {name: (source, shadow)}."""
    routes, topics = [], {}
    reg = client(url)
    for name, fault in faults_by_name.items():
        source = topic_factory(partitions=1)
        shadow = topic_factory(partitions=1, suffix=".shadow")
        topics[name] = (source, shadow)
        if fault.get("mode") == "old_version":
            from confluent_kafka.schema_registry import Schema

            reg.register_schema(f"{source}-value", Schema(json.dumps(V1), "AVRO"))
        produce_avro(bootstrap, url, source, N)
        routes.append(
            {
                "source": source,
                "shadow": shadow,
                "format": "avro",
                "faults": [{"fraction": fraction, **fault}],
            }
        )
    raw = bridge_config(
        bootstrap, group, routes, schema_registry={"url": url}, ledger={"path": str(ledger)}
    )
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    assert bridge.run(idle_exit=3) == 0
    return bridge, topics


def injections(ledger: Path, source: str) -> dict[int, dict]:
    entries = read_ledger(ledger)
    return {
        e["source"]["offset"]: e
        for e in entries
        if e["kind"] == "injection" and e["route"] == source
    }


def shadow_by_offset(bootstrap, shadow, ledger, n=N):
    """Shadow records of a one-partition source by source offset (traced by the ledger's
    lineage lines); all n of them."""
    lineage = lineage_of(ledger)
    out = {origin_of(m, lineage)[1]: m for m in read_all(bootstrap, shadow, expect=n)}
    assert set(out) == set(range(n)), f"{len(out)} of {n} shadow records"
    return out


def started_behind(proxy, real, raw, ledger: Path, **registry: Any) -> tuple[Bridge, Thread]:
    """A bridge reaching the registry through ``proxy`` (to ``real``), with a ledger file,
    running in a thread."""
    raw["schema_registry"] = {"url": f"http://127.0.0.1:{proxy.port}{real.path}", **registry}
    raw["ledger"] = {"path": str(ledger)}
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    thread = Thread(target=bridge.run, daemon=True)
    thread.start()
    return bridge, thread


def test_schema_breaks_as_a_consumer_sees_them(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    faults = {m: {"type": "schema_break", "mode": m} for m in WIRE}
    faults |= {m: {"type": "schema_break", "mode": m, **p} for m, p in CONTRACT.items()}
    ledger = tmp_path / "ledger.jsonl"
    bridge, topics = run_routes(
        kafka_bootstrap, schema_registry_url, topic_factory, group_id, faults, ledger
    )
    for mode, (source, shadow) in topics.items():
        read = Reader(schema_registry_url, shadow)
        hits = injections(ledger, source)
        sources = {m.offset(): m for m in read_all(kafka_bootstrap, source, expect=N)}
        assert 20 <= len(hits) <= 80, mode
        counted = bridge.registry.get_sample_value(
            "streamchaos_injections_total",
            {"experiment": "it", "route": source, "fault": "schema_break", "type": "schema_break"},
        )
        assert counted == len(hits), mode
        for off, msg in shadow_by_offset(kafka_bootstrap, shadow, ledger).items():
            if off not in hits:
                assert read(msg.value()) == row(off), (mode, off)
                continue
            check_break(mode, read, msg.value(), row(off), hits[off], sources[off].value())


def check_break(mode, read, value, original, entry, source_bytes):
    assert entry["detail"]["mode"] == mode
    if mode in ("bad_magic", "unknown_schema_id", "truncate"):
        with pytest.raises(Exception):  # noqa: B017 - any deserialization error
            read(value)
        return
    if mode == "append_garbage":  # Confluent's deserializer ignores trailing bytes
        assert read(value) == original
        return
    if mode == "bit_flip":  # exactly the ledgered bit differs; a reader may not notice
        bit = entry["detail"]["bit"]
        assert value[5 + bit // 8] ^ source_bytes[5 + bit // 8] == 1 << (bit % 8)
        assert sum(a != b for a, b in zip(value, source_bytes, strict=True)) == 1
        return
    decoded = read(value)
    assert entry["detail"]["schema_id"] != entry["detail"]["old_schema_id"]
    if mode == "drop_field":
        assert "device" not in decoded
    elif mode == "rename_field":
        assert "device" not in decoded and decoded["platform"] == original["device"]
    elif mode == "change_type":
        assert decoded["amount"] == str(original["amount"])
    elif mode == "make_nullable":
        assert decoded["count"] is None
    elif mode == "unknown_enum_symbol":
        assert decoded["country"] == "STREAMCHAOS_UNKNOWN"
    elif mode == "old_version":
        assert "note" not in decoded
        assert {k: v for k, v in original.items() if k != "note"} == decoded


def test_corrupt_modes_decode_to_the_corrupted_values(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    faults = {m: {"type": "corrupt", "mode": m, **p} for m, p in CORRUPT.items()}
    ledger = tmp_path / "ledger.jsonl"
    _, topics = run_routes(
        kafka_bootstrap, schema_registry_url, topic_factory, group_id, faults, ledger
    )
    for mode, (source, shadow) in topics.items():
        read = Reader(schema_registry_url, shadow)
        hits = injections(ledger, source)
        assert hits, mode
        first_stuck = None
        for off, msg in sorted(shadow_by_offset(kafka_bootstrap, shadow, ledger).items()):
            decoded, original = read(msg.value()), row(off)
            if off not in hits:
                assert decoded == original, (mode, off)
                continue
            first_stuck = check_corrupt(mode, decoded, original, hits[off], first_stuck)


def check_corrupt(mode, got, src, entry, stuck):
    fields = entry["detail"]["fields"]
    if mode == "null":
        assert got["amount"] is None
    elif mode == "nan":
        assert math.isnan(got["amount"])
    elif mode == "inf":
        assert got["amount"] == -math.inf
    elif mode == "type_flip":
        assert got["is_fraud"] == str(src["is_fraud"]).lower()
        assert got["count"] == str(src["count"])
    elif mode == "unseen_category":
        assert got["device"] not in ("ios", "android", "web")
        assert got["country"] not in ("DE", "FR", "US")
    elif mode == "empty_string":
        assert got["user"] == ""
    elif mode == "drop_feature":
        assert "device" not in got
    elif mode == "stuck":
        stuck = src["amount"] if stuck is None else stuck
        assert got["amount"] == stuck
    elif mode == "unit_scale":
        assert got["amount"] == pytest.approx(src["amount"] * 100)
    elif mode == "spike":
        assert got["count"] != src["count"]
    elif mode == "timestamp_skew":
        assert got["event_time"] - src["event_time"] == 5 * 3_600_000
    for name, change in fields.items():
        assert change["old"] == src[name], (mode, name)
    assert {k for k in got if got[k] != src.get(k)} <= set(fields) | {"device"}
    return stuck


def test_bad_input_passes_through_counted_and_nothing_is_lost(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    produce_avro(kafka_bootstrap, schema_registry_url, source, 20)
    bad = [b"not avro at all", None, b"", b"\x00\x7f\xff\xff\xf0abc", b"\x00\x00"]
    produce_all(kafka_bootstrap, ({"topic": source, "value": v, "key": b"k"} for v in bad * 4))
    produce_avro(kafka_bootstrap, schema_registry_url, source, 20, start=20)
    raw = route_config(
        kafka_bootstrap,
        group_id,
        source,
        shadow,
        format="avro",
        faults=[{"type": "corrupt", "mode": "nan", "fields": ["amount"], "fraction": 1.0}],
    )
    raw["schema_registry"] = {"url": schema_registry_url}
    ledger = tmp_path / "ledger.jsonl"
    raw["ledger"] = {"path": str(ledger)}
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    assert bridge.run(idle_exit=3) == 0

    src = {m.offset(): m for m in read_all(kafka_bootstrap, source, expect=60)}
    out = shadow_by_offset(kafka_bootstrap, shadow, ledger, 60)
    assert set(out) == set(src)
    for off in range(20, 40):
        assert out[off].value() == src[off].value()
    value = bridge.registry.get_sample_value
    reasons = {
        r: value("streamchaos_undecodable_total", {"route": source, "reason": r})
        for r in ("bad_magic", "tombstone", "empty", "unknown_schema_id", "too_short")
    }
    assert reasons == {
        "bad_magic": 4,
        "tombstone": 4,
        "empty": 4,
        "unknown_schema_id": 4,
        "too_short": 4,
    }
    assert len(injections(ledger, source)) == 40
    assert audit(kafka_bootstrap, source, shadow, ledger).ok


def test_registry_outage_mid_run_then_recovery(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    import time
    from urllib.parse import urlsplit

    from tests.integration.conftest import wait_until
    from tests.integration.tcp_proxy import TcpProxy

    real = urlsplit(schema_registry_url)
    proxy = TcpProxy(real.hostname, real.port)  # not started: the registry is "down"
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    raw = route_config(
        kafka_bootstrap,
        group_id,
        source,
        shadow,
        format="avro",
        faults=[{"type": "corrupt", "mode": "null", "fields": ["amount"], "fraction": 1.0}],
    )
    ledger = tmp_path / "ledger.jsonl"
    bridge, thread = started_behind(proxy, real, raw, ledger, timeout=2, retry_backoff="1s")
    value = bridge.registry.get_sample_value
    try:
        produce_avro(kafka_bootstrap, schema_registry_url, source, 50)
        wait_until(
            lambda: value("streamchaos_records_produced_total", {"route": source}) == 50,
            60,
            "50 records through while the registry is down",
        )
        down = value(
            "streamchaos_undecodable_total", {"route": source, "reason": "registry_unavailable"}
        )
        assert down == 50 and thread.is_alive()
        proxy.start()
        time.sleep(1.5)  # let the 1 s retry backoff pass; nothing is asserted about time
        produce_avro(kafka_bootstrap, schema_registry_url, source, 50, start=50)
        wait_until(
            lambda: (
                value(
                    "streamchaos_injections_total",
                    {"experiment": "it", "route": source, "fault": "corrupt", "type": "corrupt"},
                )
                == 50
            ),
            60,
            "50 injections after the registry came back",
        )
    finally:
        bridge.stop()
        thread.join(60)
        proxy.stop()
    read = Reader(schema_registry_url, shadow)
    out = shadow_by_offset(kafka_bootstrap, shadow, ledger, 100)
    assert all(read(out[o].value()) == row(o) for o in range(50))
    assert all(read(out[o].value())["amount"] is None for o in range(50, 100))
    assert audit(kafka_bootstrap, source, shadow, ledger).ok


def test_schema_loaded_at_startup_outlives_a_registry_outage(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    """The bridge looks up each Avro route's latest value schema before it consumes:
    records written with that schema are changed even if the registry is gone by the time
    they arrive."""
    from urllib.parse import urlsplit

    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from tests.integration.avro_helpers import SCHEMA, SERDE_CONF
    from tests.integration.conftest import wait_until
    from tests.integration.tcp_proxy import TcpProxy

    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    # the producer's schema registered, as a producer would on its first record
    ser = AvroSerializer(client(schema_registry_url), json.dumps(SCHEMA), conf=SERDE_CONF)
    ser(row(0), SerializationContext(source, MessageField.VALUE))
    real = urlsplit(schema_registry_url)
    proxy = TcpProxy(real.hostname, real.port)
    proxy.start()
    # NaN keeps the writer schema: nothing to register in the shadow's subject either
    corrupt = {"type": "corrupt", "mode": "nan", "fields": ["amount"], "fraction": 1.0}
    raw = route_config(kafka_bootstrap, group_id, source, shadow, format="avro", faults=[corrupt])
    ledger = tmp_path / "ledger.jsonl"
    bridge, thread = started_behind(proxy, real, raw, ledger, timeout=2)
    value = bridge.registry.get_sample_value
    try:
        bridge.wait_until_assigned()
        proxy.stop()  # the registry is gone for the bridge from here on
        produce_avro(kafka_bootstrap, schema_registry_url, source, 40)
        wait_until(
            lambda: value("streamchaos_records_produced_total", {"route": source}) == 40,
            60,
            "40 records through",
        )
    finally:
        bridge.stop()
        thread.join(60)
        proxy.stop()
    injected = value(
        "streamchaos_injections_total",
        {"experiment": "it", "route": source, "fault": "corrupt", "type": "corrupt"},
    )
    unavailable = value(
        "streamchaos_undecodable_total", {"route": source, "reason": "registry_unavailable"}
    )
    assert injected == 40 and not unavailable
    read = Reader(schema_registry_url, shadow)
    out = shadow_by_offset(kafka_bootstrap, shadow, ledger, 40)
    assert all(math.isnan(read(out[o].value())["amount"]) for o in range(40))
    assert sorted(injections(ledger, source)) == list(range(40))
    assert audit(kafka_bootstrap, source, shadow, ledger).ok
