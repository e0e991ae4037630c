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
