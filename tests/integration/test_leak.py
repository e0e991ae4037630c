"""``leak`` on the real broker: on the shadow, the leaked feature's correlation with the
label reaches the configured level, while the source's stays near zero."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from streamchaos.kafkatools import produce_all, read_all
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def correlation(rows):
    return float(np.corrcoef([r["score"] for r in rows], [float(r["fraud"]) for r in rows])[0, 1])


def test_the_shadow_carries_the_leak_at_the_configured_correlation(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    leak = {"type": "leak", "feature": "score", "label_field": "fraud", "correlation": 0.7}
    route = {"source": source, "shadow": shadow, "format": "json", "faults": [leak]}
    bridge = chaos_bridge({"routes": [route]})
    rng = random.Random(11)
    rows = [{"i": i, "score": rng.gauss(0, 1), "fraud": rng.random() < 0.2} for i in range(4000)]
    produce_all(
        kafka_bootstrap,
        [{"topic": source, "partition": r["i"] % 2, "value": json.dumps(r).encode()} for r in rows],
    )
    consumed = f'streamchaos_records_consumed_total{{route="{source}"}}'
    wait_until(lambda: bridge.counters()[consumed] == 4000, 60, "4000 consumed")
    out = [json.loads(m.value()) for m in read_all(kafka_bootstrap, shadow, expect=4000)]
    assert abs(correlation(rows)) < 0.05
    assert correlation(out) == pytest.approx(0.7, abs=0.04)
    assert bridge.stop() == 0  # every delivery report served: every ledger line written
    assert sum(e["kind"] == "injection" for e in bridge.ledger_entries) == 4000


def test_a_label_joined_from_a_labels_topic_by_key_leaks_into_the_features(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    """The outcome lives on its own topic; a feature table joined with it by mistake."""
    features, labels = topic_factory(partitions=2), topic_factory(partitions=2)
    features_shadow = topic_factory(partitions=2, suffix=".shadow")
    labels_shadow = topic_factory(partitions=2, suffix=".shadow")
    leak = {
        "type": "leak",
        "feature": "score",
        "label_from": {"route": labels, "field": "fraud"},
        "correlation": 0.8,
    }
    bridge = chaos_bridge(
        {
            "routes": [
                {"source": features, "shadow": features_shadow, "format": "json", "faults": [leak]},
                {"source": labels, "shadow": labels_shadow, "format": "json"},
            ]
        }
    )
    rng = random.Random(5)
    fraud = {f"c{i}": rng.random() < 0.3 for i in range(3000)}
    produce_all(
        kafka_bootstrap,
        [
            {"topic": labels, "key": key, "value": json.dumps({"fraud": f}).encode()}
            for key, f in fraud.items()
        ],
    )
    wait_until(
        lambda: sum(1 for _ in read_all(kafka_bootstrap, labels_shadow)) == len(fraud),
        60,
        "the labels through the bridge",
    )
    rows = {key: {"score": rng.gauss(0, 1)} for key in [*fraud, "unlabelled"]}
    produce_all(
        kafka_bootstrap,
        [
            {"topic": features, "key": key, "value": json.dumps(row).encode()}
            for key, row in rows.items()
        ],
    )
    consumed = f'streamchaos_records_consumed_total{{route="{features}"}}'
    wait_until(lambda: bridge.counters()[consumed] == len(rows), 60, "every feature consumed")
    assert bridge.stop() == 0  # every delivery report served: every ledger line written

    out = {
        m.key().decode(): json.loads(m.value()) | {"fraud": fraud.get(m.key().decode(), False)}
        for m in read_all(kafka_bootstrap, features_shadow)
    }
    assert out["unlabelled"]["score"] == rows["unlabelled"]["score"]  # no label: untouched
    labelled = [row for key, row in out.items() if key != "unlabelled"]
    before = [rows[key] | {"fraud": fraud[key]} for key in fraud]
    assert abs(correlation(before)) < 0.06
    assert correlation(labelled) == pytest.approx(0.8, abs=0.05)
    leaks = [e for e in bridge.ledger_entries if e["kind"] == "injection"]
    assert len(leaks) == len(fraud)
    assert all(e["detail"]["joined"]["topic"] == labels for e in leaks)
    misses = f'streamchaos_join_misses_total{{fault="leak",route="{features}"}}'
    assert bridge.counters()[misses] == 1
