"""Avro fixtures for the registry tests: a feature schema, producing and reading with
confluent-kafka's own serializers (what a user's consumer would run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streamchaos.kafkatools import produce_all

SCHEMA = {
    "type": "record",
    "name": "Payment",
    "namespace": "it",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "count", "type": "long"},
        {"name": "is_fraud", "type": "boolean"},
        {
            "name": "country",
            "type": {"type": "enum", "name": "Country", "symbols": ["DE", "FR", "US"]},
        },
        {"name": "device", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "event_time", "type": "long"},
    ],
}
V1 = {**SCHEMA, "fields": [f for f in SCHEMA["fields"] if f["name"] != "note"]}


def row(i: int) -> dict[str, Any]:
    return {
        "user": f"u{i % 50}",
        "amount": 10.0 + (i % 17) * 1.25,
        "count": i,
        "is_fraud": i % 11 == 0,
        "country": ["DE", "FR", "US"][i % 3],
        "device": ["ios", "android", "web"][i % 3],
        "note": None if i % 2 else f"n{i}",
        "event_time": 1_700_000_000_000 + i * 1000,
    }


# the subject is ``<topic>-value``, as the bridge registers it. Named explicitly: the
# default (confluent-kafka 2.16: ASSOCIATED) first asks the registry for an association,
# which Apicurio answers 404, and twice the request after such a 404 on the same
# connection went unanswered until the client's timeout (20 s in a CI run's registry log)
SERDE_CONF = {"subject.name.strategy.type": "TOPIC"}


def client(url: str) -> SchemaRegistryClient:
    """A registry client that cannot hang a test: confluent-kafka sets no HTTP timeout by
    default, and one unanswered request once held a CI run until pytest-timeout fired.
    Timed-out requests are transport errors, which the client retries."""
    return SchemaRegistryClient({"url": url, "timeout": 20, "max.retries": 4})


def produce_avro(
    bootstrap: str,
    url: str,
    topic: str,
    n: int,
    schema: dict = SCHEMA,
    start: int = 0,
    make_row: Callable[[int], dict[str, Any]] | None = None,
) -> None:
    """Rows ``start..start+n`` serialized with confluent-kafka's AvroSerializer."""
    make = make_row or row
    ser = AvroSerializer(client(url), json.dumps(schema), conf=SERDE_CONF)
    ctx = SerializationContext(topic, MessageField.VALUE)

    def record(i: int) -> dict[str, Any]:
        value = make(i)  # once: a row can be costly to make
        return {"topic": topic, "key": str(value["user"]).encode(), "value": ser(value, ctx)}

    produce_all(bootstrap, (record(i) | {"partition": 0} for i in range(start, start + n)))


class Reader:
    """Decodes shadow values the way a user's consumer would (AvroDeserializer)."""

    def __init__(self, url: str, topic: str) -> None:
        self.de = AvroDeserializer(client(url), conf=SERDE_CONF)
        self.ctx = SerializationContext(topic, MessageField.VALUE)

    def __call__(self, value: bytes) -> Any:
        return self.de(value, self.ctx)


FEATURES = {
    "type": "record",
    "name": "Features",
    "namespace": "it",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "country", "type": "string"},
        {"name": "device", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "label", "type": "boolean"},
    ],
}


def feature_row(i: int) -> dict[str, Any]:
    """Deterministic, realistic-ish: amount ~ N(50, 10), categoricals with fixed mixes."""
    import random

    rng = random.Random(i)
    return {
        "user": f"u{i % 97}",
        "amount": rng.gauss(50.0, 10.0),
        "country": ["DE", "FR", "US", "DE"][i % 4],
        "device": ["ios", "android"][i % 2],
        "note": f"n{i}",
        "label": rng.random() < 0.2,
    }


def produce_features(bootstrap: str, url: str, topic: str, n: int, start: int = 0) -> None:
    produce_avro(bootstrap, url, topic, n, FEATURES, start, make_row=feature_row)
