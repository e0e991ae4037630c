"""``feedback`` on the real broker: a fraud model's labels arrive only for the transactions
it approved. Predictions and labels are two topics the bridge reads; the labels of declined
transactions never reach the shadow, and the ledger names the prediction of each."""

from __future__ import annotations

import json

import pytest

from streamchaos.kafkatools import produce_all, read_all
from tests.integration.conftest import shadow_count, wait_until

pytestmark = pytest.mark.integration
TRANSACTIONS = 400
UNKNOWN = 25  # labels whose transaction had no prediction: they pass, counted as misses


def test_only_approved_labels_reach_the_shadow_and_each_dropped_one_names_its_prediction(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    predictions, labels = topic_factory(partitions=2), topic_factory(partitions=2)
    predictions_shadow = topic_factory(partitions=2, suffix=".shadow")
    labels_shadow = topic_factory(partitions=2, suffix=".shadow")
    censor = {"type": "feedback", "join": {"route": predictions}, "when": {"decision": "decline"}}
    bridge = chaos_bridge(
        {
            "routes": [
                {"source": labels, "shadow": labels_shadow, "format": "json", "faults": [censor]},
                {"source": predictions, "shadow": predictions_shadow, "format": "json"},
            ]
        }
    )
    decision = {f"tx{i}": "decline" if i % 4 == 0 else "approve" for i in range(TRANSACTIONS)}
    produce_all(
        kafka_bootstrap,
        (
            {"topic": predictions, "key": key, "value": json.dumps({"decision": d}).encode()}
            for key, d in decision.items()
        ),
    )
    # the model decides first; the outcomes come later, once the decisions went through
    wait_until(
        lambda: shadow_count(kafka_bootstrap, predictions_shadow) == TRANSACTIONS,
        60,
        "the predictions through the bridge",
    )
    outcomes = [*decision, *(f"unknown{i}" for i in range(UNKNOWN))]
    produce_all(
        kafka_bootstrap,
        (
            {"topic": labels, "key": key, "value": json.dumps({"fraud": i % 3 == 0}).encode()}
            for i, key in enumerate(outcomes)
        ),
    )
    consumed = f'streamchaos_records_consumed_total{{route="{labels}"}}'
    wait_until(lambda: bridge.counters()[consumed] == len(outcomes), 60, "every label consumed")
    assert bridge.stop() == 0  # every delivery report served: every ledger line written

    approved = {key for key, d in decision.items() if d == "approve"}
    unknown = {f"unknown{i}" for i in range(UNKNOWN)}
    reached = {m.key().decode() for m in read_all(kafka_bootstrap, labels_shadow)}
    assert reached == approved | unknown
    assert shadow_count(kafka_bootstrap, labels_shadow) == len(approved) + UNKNOWN

    where = {
        m.key().decode(): {"topic": predictions, "partition": m.partition(), "offset": m.offset()}
        for m in read_all(kafka_bootstrap, predictions)
    }
    label_keys = {
        (m.partition(), m.offset()): m.key().decode() for m in read_all(kafka_bootstrap, labels)
    }
    drops = [e for e in bridge.ledger_entries if e["kind"] == "injection"]
    assert all(e["effect"] == "drop" and e["route"] == labels for e in drops)
    dropped = {label_keys[(e["source"]["partition"], e["source"]["offset"])]: e for e in drops}
    assert set(dropped) == {key for key, d in decision.items() if d == "decline"}
    assert all(e["detail"]["joined"] == where[key] for key, e in dropped.items())
    misses = f'streamchaos_join_misses_total{{fault="feedback",route="{labels}"}}'
    assert bridge.counters()[misses] == UNKNOWN


def test_delayed_feedback_holds_the_declined_labels_until_the_bridge_stops(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    predictions, labels = topic_factory(), topic_factory()
    predictions_shadow, labels_shadow = (
        topic_factory(suffix=".shadow"),
        topic_factory(suffix=".shadow"),
    )
    review = {
        "type": "feedback",
        "join": {"route": predictions},
        "when": {"decision": "decline"},
        "action": "delay",
        "delay": "10m",  # a manual review: far past the test
    }
    bridge = chaos_bridge(
        {
            "routes": [
                {"source": labels, "shadow": labels_shadow, "format": "json", "faults": [review]},
                {"source": predictions, "shadow": predictions_shadow, "format": "json"},
            ]
        }
    )
    decision = {f"tx{i}": "decline" if i % 4 == 0 else "approve" for i in range(200)}
    produce_all(
        kafka_bootstrap,
        (
            {"topic": predictions, "key": k, "value": json.dumps({"decision": d}).encode()}
            for k, d in decision.items()
        ),
    )
    consumed = f'streamchaos_records_consumed_total{{route="{predictions}"}}'
    wait_until(lambda: bridge.counters().get(consumed) == 200, 60, "the predictions consumed")
    produce_all(
        kafka_bootstrap,
        ({"topic": labels, "key": k, "value": b'{"fraud": false}'} for k in decision),
    )
    approved = {k for k, d in decision.items() if d == "approve"}
    wait_until(
        lambda: shadow_count(kafka_bootstrap, labels_shadow) == len(approved),
        60,
        "the approved labels",
    )
    assert {m.key().decode() for m in read_all(kafka_bootstrap, labels_shadow)} == approved
    assert bridge.stop() == 0  # the held labels go out now, marked early
    assert shadow_count(kafka_bootstrap, labels_shadow) == len(decision)
    held = [e for e in bridge.ledger_entries if e["kind"] == "injection"]
    assert len(held) == len(decision) - len(approved)
    assert all(e["detail"]["released_early"] and e["detail"]["delay_ms"] == 600_000 for e in held)
