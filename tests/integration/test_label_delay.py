"""``label_delay`` on the real broker: the fraud labels are held (30 days, scaled to 300 s)
while the clean ones pass at once; a stop releases the held ones, marked early, and the
shadow is complete."""

from __future__ import annotations

import json

import pytest

from streamchaos.kafkatools import produce_all, read_all
from tests.integration.conftest import shadow_count, wait_until

pytestmark = pytest.mark.integration
LABELS = 1000


def test_fraud_labels_wait_while_clean_ones_pass(kafka_bootstrap, topic_factory, chaos_bridge):
    source, shadow = topic_factory(partitions=2), topic_factory(partitions=2, suffix=".shadow")
    late = {
        "type": "label_delay",
        "label_field": "fraud",
        "classes": {"true": {"delay": "30d"}},
        "time_scale": 1 / 8640,  # a day is 10 s: 300 s, far past the test
    }
    bridge = chaos_bridge(
        {"routes": [{"source": source, "shadow": shadow, "format": "json", "faults": [late]}]}
    )
    fraud = {f"tx{i}": i % 5 == 0 for i in range(LABELS)}
    produce_all(
        kafka_bootstrap,
        (
            {"topic": source, "key": k, "value": json.dumps({"fraud": f}).encode()}
            for k, f in fraud.items()
        ),
    )
    clean = sum(not f for f in fraud.values())
    wait_until(lambda: shadow_count(kafka_bootstrap, shadow) >= clean, 60, "the clean labels")
    arrived = {json.loads(m.value())["fraud"] for m in read_all(kafka_bootstrap, shadow)}
    assert arrived == {False}  # the fraud labels are still minutes away
    assert bridge.stop() == 0  # releases what it holds, flushes, commits
    out = [json.loads(m.value())["fraud"] for m in read_all(kafka_bootstrap, shadow)]
    assert len(out) == LABELS and sum(out) == LABELS - clean
    held = [e for e in bridge.ledger_entries if e["kind"] == "injection"]
    assert len(held) == LABELS - clean
    assert all(e["detail"]["class"] == "true" and e["detail"]["released_early"] for e in held)
    assert all(e["detail"]["scaled_delay_ms"] == 300_000 for e in held)
