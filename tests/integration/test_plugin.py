"""The docs/pytest-plugin.md example, run as written: the plugin's fixtures end to end."""

import json
import statistics
import time

import pytest
from confluent_kafka import Consumer, Producer

from streamchaos.evaluation import Alert, episodes_from_ledger, score

pytestmark = pytest.mark.integration


def my_detector(bootstrap, topic, baseline=50.0, sigma=10.0, window=200, timeout=60):
    """The team's own detector: rolling mean vs the training mean. Returns alert times."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"det-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    values, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                values.append(json.loads(msg.value())["amount"])
                recent = values[-window:]
                if (
                    len(recent) == window
                    and abs(statistics.mean(recent) - baseline) > 4 * sigma / window**0.5
                ):
                    return [time.time()]
    finally:
        consumer.close()
    return []


def test_detector_catches_a_mean_shift(kafka_bootstrap, topic_factory, chaos_bridge):
    source = topic_factory()
    shadow = topic_factory(suffix=".shadow")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(3000):  # features as the pipeline produces them
        producer.produce(source, json.dumps({"amount": 50.0 + (i % 21 - 10)}).encode())
    producer.flush()

    bridge = chaos_bridge(
        {
            "routes": [
                {
                    "source": source,
                    "shadow": shadow,
                    "format": "json",
                    "faults": [{"type": "drift", "features": {"amount": {"shift": 5}}}],
                }
            ]
        }
    )
    alerts = [Alert(at) for at in my_detector(kafka_bootstrap, shadow)]
    bridge.stop()

    card = score(episodes_from_ledger(bridge.ledger_entries), alerts, max_delay=30)
    assert card.recall == 1.0, card.table()
