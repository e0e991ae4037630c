"""``header`` on the real broker: a model router that picks the model by the
``model-version`` header sees the flipped fraction, and the ledger names each one."""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka import Consumer

from streamchaos.kafkatools import produce_all, unique_name
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def route_by_model(bootstrap: str, topic: str, n: int) -> Counter[str]:
    """A third-party consumer: reads the shadow and counts records per model it would send
    them to (the header's value; none: the default model)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("router"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    routed: Counter[str] = Counter()
    try:
        for _ in range(120):  # bounded: 120 fetches of up to 0.5 s
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    headers = dict(msg.headers() or [])
                    routed[(headers.get("model-version") or b"default").decode()] += 1
            if routed.total() >= n:
                break
    finally:
        consumer.close()
    return routed


def test_a_router_on_model_version_sees_the_flipped_fraction(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    flip = {
        "type": "header",
        "header": "model-version",
        "value": "v6",
        "fraction": 0.2,
        "where": {"header.model-version": "v7"},
    }
    bridge = chaos_bridge({"routes": [{"source": source, "shadow": shadow, "faults": [flip]}]})
    records = [
        {
            "topic": source,
            "partition": i % 2,
            "key": b"k%d" % i,
            "value": b"v%d" % i,
            "headers": [("model-version", b"v7" if i % 4 else b"v8"), ("trace", b"t%d" % i)],
        }
        for i in range(4000)
    ]
    produce_all(kafka_bootstrap, records)
    consumed = f'streamchaos_records_consumed_total{{route="{source}"}}'
    wait_until(lambda: bridge.counters()[consumed] == 4000, 60, "4000 consumed")
    routed = route_by_model(kafka_bootstrap, shadow, 4000)
    assert bridge.stop() == 0  # every delivery report served: every ledger line written
    flipped = [e for e in bridge.ledger_entries if e["kind"] == "injection"]
    assert routed["v8"] == 1000, routed  # outside the where: never touched
    assert routed["v6"] == len(flipped) and routed["v6"] + routed["v7"] == 3000
    assert routed["v6"] == pytest.approx(600, abs=100)  # 20 % of the 3000 v7 records
    assert all(e["detail"]["old"] == "v7" and e["detail"]["new"] == "v6" for e in flipped)
