"""Realistic synthetic feature traffic (Avro via the registry), for demos and tests.

A payments-like feature stream: entity ids, event times, skewed numeric features
(log-normal amounts, gamma session lengths), a bounded score, counts, weighted
categoricals, booleans, a nullable field and a fraud label that depends on the features.
Seeded, so the same seed gives the same records. ``produce_synthetic`` is what
``streamchaos synth`` runs; it returns what landed, the command prints it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from confluent_kafka import Producer

from streamchaos.codec import AvroCodec, ParsedSchema, Registry
from streamchaos.errors import ConfigError
from streamchaos.kafkatools import create_topics, produce_with_room

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Payment",
    "namespace": "streamchaos.synth",
    "doc": "Synthetic payment features produced by `streamchaos synth`.",
    "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "user_id", "type": "string"},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": "double"},
        {"name": "session_seconds", "type": "double"},
        {"name": "risk_score", "type": "double"},
        {"name": "items", "type": "int"},
        {"name": "country", "type": "string"},
        {
            "name": "device",
            "type": {"type": "enum", "name": "Device", "symbols": ["ios", "android", "web"]},
        },
        {"name": "is_new_device", "type": "boolean"},
        {"name": "promo_code", "type": ["null", "string"], "default": None},
        {"name": "label", "type": "boolean"},
    ],
}
COUNTRIES = ["DE", "FR", "GB", "US", "BR", "IN"]
COUNTRY_P = [0.3, 0.2, 0.15, 0.2, 0.1, 0.05]
DEVICES = ["ios", "android", "web"]
DEVICE_P = [0.45, 0.4, 0.15]


class Generator:
    """Records in batches from a seeded numpy generator (vectorised draws)."""

    def __init__(self, seed: int, users: int = 5000) -> None:
        self.rng = np.random.default_rng(seed)
        self.users = users
        self.count = 0

    def batch(self, n: int, now_ms: int) -> list[dict[str, Any]]:
        rng = self.rng
        amount = np.round(rng.lognormal(3.2, 0.9, n), 2)
        session = np.round(rng.gamma(2.0, 45.0, n), 1)
        risk = np.clip(rng.normal(0.3, 0.12, n), 0, 1)
        items = rng.poisson(2.0, n) + 1
        country = rng.choice(len(COUNTRIES), n, p=COUNTRY_P)
        device = rng.choice(len(DEVICES), n, p=DEVICE_P)
        new_device = rng.random(n) < 0.08
        promo = rng.random(n) < 0.15
        logit = -5.0 + 3.5 * risk + 0.9 * new_device + 0.004 * np.minimum(amount, 500)
        label = rng.random(n) < 1 / (1 + np.exp(-logit))
        user = rng.integers(0, self.users, n)
        out = []
        for i in range(n):
            self.count += 1
            out.append(
                {
                    "event_id": f"e{self.count}",
                    "user_id": f"user-{user[i]}",
                    "event_time": now_ms,
                    "amount": float(amount[i]),
                    "session_seconds": float(session[i]),
                    "risk_score": float(risk[i]),
                    "items": int(items[i]),
                    "country": COUNTRIES[country[i]],
                    "device": DEVICES[device[i]],
                    "is_new_device": bool(new_device[i]),
                    "promo_code": f"P{user[i] % 40}" if promo[i] else None,
                    "label": bool(label[i]),
                }
            )
        return out


def encoder(registry_url: str, topic: str) -> Any:
    """value dict -> Confluent-framed Avro bytes, schema registered as ``<topic>-value``."""
    registry = Registry(registry_url)
    schema_id = registry.register(f"{topic}-value", SCHEMA)
    schema = ParsedSchema.of(SCHEMA)
    codec = AvroCodec(registry)

    def encode(value: dict[str, Any]) -> bytes:
        return codec.encode(value, schema, schema_id)

    return encode


def paced(
    gen: Generator,
    *,
    count: int | None,
    duration: float | None,
    rate: float | None,
    chunk: int = 200,
) -> Iterator[list[dict[str, Any]]]:
    """Batches until ``count`` records or ``duration`` seconds, at ``rate`` per second."""
    start = time.monotonic()
    sent = 0
    while (count is None or sent < count) and (
        duration is None or time.monotonic() - start < duration
    ):
        n = chunk if count is None else min(chunk, count - sent)
        yield gen.batch(n, int(time.time() * 1000))
        sent += n
        if rate:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)


def expected_total(count: int | None, duration: float | None, rate: float | None) -> int | None:
    if count is not None:
        return count
    if duration is not None and rate:
        return math.ceil(duration * rate)
    return None


@dataclass(frozen=True)
class SynthResult:
    produced: int  # records the broker acknowledged
    undelivered: int  # refused, or still queued when the final flush gave up

    @property
    def ok(self) -> bool:
        return self.undelivered == 0


def produce_synthetic(
    bootstrap: str,
    registry_url: str,
    topic: str,
    *,
    count: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    seed: int = 7,
    partitions: int = 3,
    progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Produce ``count`` records or for ``duration`` seconds (whichever ends first), at
    ``rate`` per second (None: as fast as possible), keyed by user, to ``topic`` (created
    with ``partitions`` if missing). ``progress(n)`` is called after each batch of n."""
    if count is None and duration is None:
        raise ConfigError("count or duration: give one")
    create_topics(bootstrap, [topic], partitions, exist_ok=True)
    encode = encoder(registry_url, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failed: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    sent = 0
    for batch in paced(Generator(seed), count=count, duration=duration, rate=rate):
        for value in batch:
            produce_with_room(
                producer,
                topic=topic,
                value=encode(value),
                key=value["user_id"].encode(),
                on_delivery=on_delivery,
            )
        producer.poll(0)
        sent += len(batch)
        if progress is not None:
            progress(len(batch))
    left = producer.flush(60)
    return SynthResult(produced=sent - left - len(failed), undelivered=left + len(failed))
