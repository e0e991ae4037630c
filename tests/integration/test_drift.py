"""Drift and label faults measured statistically from the shadow, on the real broker."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry
from scipy.stats import ks_2samp

from streamchaos.bridge import Bridge
from streamchaos.config import config_from_dict
from streamchaos.evaluation.audit import audit
from streamchaos.kafkatools import read_all
from streamchaos.ledger import read_ledger
from streamchaos.schedule import Schedule
from tests.integration.avro_helpers import Reader, feature_row, produce_features
from tests.integration.conftest import bridge_config, lineage_of, origin_of

pytestmark = pytest.mark.integration


def routes_for(topic_factory, faults_by_name):
    routes, topics = [], {}
    for name, faults in faults_by_name.items():
        source = topic_factory(partitions=1)
        shadow = topic_factory(partitions=1, suffix=".shadow")
        topics[name] = (source, shadow)
        routes.append({"source": source, "shadow": shadow, "format": "avro", "faults": faults})
    return routes, topics


def make_bridge(bootstrap, url, group, routes, ledger):
    raw = bridge_config(
        bootstrap, group, routes, schema_registry={"url": url}, ledger={"path": str(ledger)}
    )
    return Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())


def run_bridge(bootstrap, url, group, routes, ledger):
    """Bridge until the sources are drained; a clean exit is part of every test."""
    assert make_bridge(bootstrap, url, group, routes, ledger).run(idle_exit=3) == 0


def ledger_entries(ledger, source, kind="injection"):
    return [e for e in read_ledger(ledger) if e["route"] == source and e["kind"] == kind]


def decoded_shadow(bootstrap, url, shadow, n, ledger):
    """Shadow records by source offset (traced by the ledger's lineage lines), decoded."""
    read, lineage = Reader(url, shadow), lineage_of(ledger)
    return {
        origin_of(m, lineage)[1]: (m, read(m.value()))
        for m in read_all(bootstrap, shadow, expect=n)
    }


def test_two_sigma_step_shift_and_fraction(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    n, warmup = 4000, 500
    routes, topics = routes_for(
        topic_factory,
        {
            "shift": [
                {
                    "type": "drift",
                    "features": {"amount": {"shift": 2, "unit": "sigma"}},
                    "warmup": warmup,
                }
            ],
            "fraction": [{"type": "drift", "fraction": 0.2, "features": {"amount": {"shift": 5}}}],
        },
    )
    for source, _ in topics.values():
        produce_features(kafka_bootstrap, schema_registry_url, source, n)
    ledger = tmp_path / "ledger.jsonl"
    run_bridge(kafka_bootstrap, schema_registry_url, group_id, routes, ledger)

    source, shadow = topics["shift"]
    out = decoded_shadow(kafka_bootstrap, schema_registry_url, shadow, n, ledger)
    src = {m.offset(): m for m in read_all(kafka_bootstrap, source, expect=n)}
    for off in range(warmup - 1):  # the warm-up passes byte-identical
        assert out[off][0].value() == src[off].value()
    before = [feature_row(i)["amount"] for i in range(warmup, n)]
    after = [out[i][1]["amount"] for i in range(warmup, n)]
    sigma = statistics.stdev(feature_row(i)["amount"] for i in range(warmup))
    shift = statistics.mean(after) - statistics.mean(before)
    assert shift == pytest.approx(2 * sigma, abs=4 * sigma / math.sqrt(2 * warmup) * 2)
    assert ks_2samp(before, after).pvalue < 1e-9
    assert {k: v for k, v in out[n - 1][1].items() if k != "amount"} == {
        k: v for k, v in feature_row(n - 1).items() if k != "amount"
    }

    source, _ = topics["fraction"]
    injected = len(ledger_entries(ledger, source))
    assert abs(injected - 0.2 * n) < 4 * math.sqrt(n * 0.2 * 0.8)
    [end] = ledger_entries(ledger, source, "episode_end")
    assert end["detail"]["injected"] == injected
    assert end["detail"]["realised_fraction"] == pytest.approx(injected / n, abs=1e-4)


def test_linear_and_sigmoid_intensity_measured_from_the_shadow(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    shapes = {"linear": {"shape": "linear", "ramp": 4}, "sigmoid": {"shape": "sigmoid", "ramp": 4}}
    routes, topics = routes_for(
        topic_factory,
        {
            name: [{"type": "drift", "features": {"amount": {"shift": 10}}, "schedule": sched}]
            for name, sched in shapes.items()
        },
    )
    ledger = tmp_path / "ledger.jsonl"
    bridge = make_bridge(kafka_bootstrap, schema_registry_url, group_id, routes, ledger)
    thread = threading.Thread(target=bridge.run, kwargs={"idle_exit": 3}, daemon=True)
    thread.start()
    for chunk in range(12):  # ~6 s of traffic across the ramp
        for source, _ in topics.values():
            produce_features(kafka_bootstrap, schema_registry_url, source, 50, start=chunk * 50)
        time.sleep(0.5)
    thread.join(60)
    for name, (source, shadow) in topics.items():
        schedule = Schedule(**shapes[name])
        [start] = ledger_entries(ledger, source, "episode_start")
        out = decoded_shadow(kafka_bootstrap, schema_registry_url, shadow, 600, ledger)
        points = []
        for e in ledger_entries(ledger, source):
            off = e["source"]["offset"]
            measured = (out[off][1]["amount"] - feature_row(off)["amount"]) / 10
            t = (e["at"] - start["at"]) / 1000
            points.append((t, measured, schedule.intensity(t)))
        assert len(points) == 600
        assert max(abs(m - want) for _, m, want in points) < 0.02, name
        spread = [m for t, m, _ in points]
        assert min(spread) < 0.3 and max(spread) > 0.7, f"{name}: the ramp was not sampled"


def test_categorical_drift_counted_in_the_shadow(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    n = 4000
    routes, topics = routes_for(
        topic_factory,
        {
            "remap": [
                {"type": "drift", "features": {"country": {"remap": {"DE": "FR"}, "p": 0.5}}}
            ],
            "new": [
                {"type": "drift", "features": {"device": {"new_category": "vr", "rate": 0.25}}}
            ],
            "mix": [
                {"type": "drift", "features": {"device": {"mix": {"ios": 0.9, "android": 0.1}}}}
            ],
            "nulls": [{"type": "drift", "features": {"note": {"null_rate": 0.3}}}],
        },
    )
    for source, _ in topics.values():
        produce_features(kafka_bootstrap, schema_registry_url, source, n)
    ledger = tmp_path / "ledger.jsonl"
    run_bridge(kafka_bootstrap, schema_registry_url, group_id, routes, ledger)
    tol = 4 * math.sqrt(n * 0.25)

    def counts(name, field):
        out = decoded_shadow(kafka_bootstrap, schema_registry_url, topics[name][1], n, ledger)
        return Counter(v[field] for _, v in out.values())

    assert counts("remap", "country")["DE"] == pytest.approx(1000, abs=tol)  # 2000 × 0.5
    assert counts("new", "device")["vr"] == pytest.approx(1000, abs=tol)
    assert counts("mix", "device")["ios"] == pytest.approx(3600, abs=tol)
    assert counts("nulls", "note")[None] == pytest.approx(1200, abs=tol)


def test_label_faults_on_a_training_topic(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    n = 3000
    routes, topics = routes_for(
        topic_factory,
        {
            "flip": [{"type": "label", "mode": "flip", "fraction": 0.1}],
            "remove": [{"type": "label", "mode": "remove_class", "class": True, "fraction": 1.0}],
            "segment": [
                {
                    "type": "label",
                    "mode": "exclude_segment",
                    "where": {"country": "US"},
                    "fraction": 1.0,
                }
            ],
        },
    )
    for source, _ in topics.values():
        produce_features(kafka_bootstrap, schema_registry_url, source, n)
    ledger = tmp_path / "ledger.jsonl"
    run_bridge(kafka_bootstrap, schema_registry_url, group_id, routes, ledger)
    truth = [feature_row(i) for i in range(n)]

    source, shadow = topics["flip"]
    out = decoded_shadow(kafka_bootstrap, schema_registry_url, shadow, n, ledger)
    flipped = {off for off, (_, v) in out.items() if v["label"] != truth[off]["label"]}
    assert flipped == {e["source"]["offset"] for e in ledger_entries(ledger, source)}
    assert abs(len(flipped) - 0.1 * n) < 4 * math.sqrt(n * 0.1 * 0.9)

    positives = sum(r["label"] for r in truth)
    source, shadow = topics["remove"]
    out = decoded_shadow(kafka_bootstrap, schema_registry_url, shadow, n - positives, ledger)
    assert len(out) == n - positives and not any(v["label"] for _, v in out.values())
    assert audit(kafka_bootstrap, source, shadow, ledger).ok

    source, shadow = topics["segment"]
    out = decoded_shadow(kafka_bootstrap, schema_registry_url, shadow, n - n // 4, ledger)
    assert len(out) == n - n // 4 and {v["country"] for _, v in out.values()} == {"DE", "FR"}
    assert audit(kafka_bootstrap, source, shadow, ledger).ok
