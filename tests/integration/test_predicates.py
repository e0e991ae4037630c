"""``where:`` on real records: each predicate kind drives its own drift on one route, and
every shadow record is shifted exactly where its predicate holds."""

from __future__ import annotations

import json

import pytest

from streamchaos.kafkatools import produce_all, read_all
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

PREDICATES = {  # feature -> where
    "a": {"header.tenant": "acme"},
    "b": {"key": {"regex": "^user-[0-4]$"}},
    "c": {"partition": 1},
    "d": {"amount": {"gt": 50, "le": 80}},
    "e": {"country": {"in": ["DE", "FR"]}, "header.region": {"regex": "^eu-"}},
}


def parts(i):
    """Record ``i``'s country, tenant header and region header."""
    country = "US" if i % 3 == 1 else ["DE", "FR"][i % 2]
    tenant, region = ("acme", "eu-west") if i % 3 == 0 else ("other", "us-east")
    return country, tenant, region


def holds(feature, i, partition):
    """Whether ``PREDICATES[feature]`` holds for record ``i``, worked out by hand."""
    country, tenant, region = parts(i)
    return {
        "a": tenant == "acme",
        "b": i % 10 < 5,
        "c": partition == 1,
        "d": 50 < i % 100 <= 80,
        "e": country in ("DE", "FR") and region.startswith("eu-"),
    }[feature]


def test_each_predicate_touches_exactly_the_records_it_names(
    kafka_bootstrap, topic_factory, chaos_bridge
):
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    faults = [
        {"type": "drift", "name": f"drift-{f}", "features": {f: {"shift": 1}}, "where": where}
        for f, where in PREDICATES.items()
    ]
    bridge = chaos_bridge(
        {"routes": [{"source": source, "shadow": shadow, "format": "json", "faults": faults}]}
    )
    records = []
    for i in range(600):
        partition = i % 3
        country, tenant, region = parts(i)
        value = {"i": i, "amount": float(i % 100), "country": country} | dict.fromkeys("abcde", 0.0)
        records.append(
            {
                "topic": source,
                "partition": partition,
                "key": f"user-{i % 10}".encode(),
                "value": json.dumps(value).encode(),
                "headers": [("tenant", tenant.encode()), ("region", region.encode())],
            }
        )
    produce_all(kafka_bootstrap, records)
    consumed = f'streamchaos_records_consumed_total{{route="{source}"}}'
    wait_until(lambda: bridge.counters()[consumed] == 600, 60, "600 consumed")
    out = read_all(kafka_bootstrap, shadow, expect=600)
    touched = {f: 0 for f in PREDICATES}
    for msg in out:
        value = json.loads(msg.value())
        for feature in PREDICATES:
            want = holds(feature, value["i"], msg.partition())
            assert (value[feature] == 1.0) is want, (feature, value, msg.partition())
            touched[feature] += want
    assert all(0 < n < 600 for n in touched.values()), touched
