"""How long a record takes to become visible on the shadow, by delivery mode.

A live stream at a steady rate goes through the bridge; a ``read_committed`` consumer of
the shadow notes, for every record, the time it received it minus the record's timestamp
(the producer's clock when it sent it; the bridge keeps timestamps). Under
``exactly-once`` a shadow record is visible to such a consumer only once its transaction
commits, once a ``bridge.commit_interval``: the latency the mode costs. Reported, not
judged: a percentile of one run on a shared machine.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.config import config_from_dict
from streamchaos.kafkatools import create_topics, delete_topics, unique_name

PARTITIONS = 3
RATE = 2_000  # records a second
SECONDS = 10
MODES = ("at-least-once", "exactly-once")


@dataclass(frozen=True)
class Latency:
    delivery: str
    commit_interval: float
    records: int
    p50: float  # milliseconds
    p99: float
    top: float


def measure(bootstrap: str) -> list[Latency]:
    return [one(bootstrap, mode) for mode in MODES]


def one(bootstrap: str, delivery: str) -> Latency:
    source = unique_name("latency")
    shadow = source + ".shadow"
    create_topics(bootstrap, [source, shadow], PARTITIONS)
    try:
        raw: dict[str, Any] = {
            "experiment": "latency",
            "delivery": delivery,
            "kafka": {"bootstrap_servers": bootstrap, "group_id": unique_name("latency")},
            "routes": [{"source": source, "shadow": shadow}],
            "metrics": {"enabled": False},
        }
        if delivery == "exactly-once":
            raw["kafka"]["transactional_id"] = unique_name("latency")
        cfg = config_from_dict(raw, env={})
        bridge = Bridge(cfg, registry=CollectorRegistry()).start()
        bridge.wait_until_assigned(60)
        seen: list[float] = []
        reader = threading.Thread(target=read, args=(bootstrap, shadow, RATE * SECONDS, seen))
        reader.start()
        stream(bootstrap, source)
        reader.join(SECONDS + 60)
        if bridge.stop(timeout=60) != 0:
            raise RuntimeError(f"the bridge exited {bridge.exit_code}")
        if len(seen) < RATE * SECONDS:
            raise RuntimeError(f"{len(seen)} of {RATE * SECONDS} records reached {shadow}")
        cuts = statistics.quantiles(seen, n=100)
        interval = cfg.bridge.commit_interval
        return Latency(delivery, interval, len(seen), cuts[49], cuts[98], max(seen))
    finally:
        delete_topics(bootstrap, [source, shadow])


def stream(bootstrap: str, topic: str) -> None:
    """``RATE`` records a second for ``SECONDS``, each stamped with the time it was sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    began = time.monotonic()
    for i in range(RATE * SECONDS):
        ahead = began + i / RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        value = b'{"i": %d, "amount": 12.5}' % i
        producer.produce(topic, value, b"k%d" % (i % 97), timestamp=int(time.time() * 1000))
        producer.poll(0)
    producer.flush(30)


def read(bootstrap: str, topic: str, n: int, seen: list[float]) -> None:
    """Milliseconds from each shadow record's timestamp to its arrival here."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("latency-reader"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    deadline = time.monotonic() + SECONDS + 60
    try:
        while len(seen) < n and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.1):
                if msg.error() is None:
                    seen.append(time.time() * 1000 - msg.timestamp()[1])
    finally:
        consumer.close()


def table(rows: list[Latency]) -> str:
    lines = [
        "## Visibility latency",
        "",
        f"A live stream of {RATE:,} records a second for {SECONDS} s through a passthrough "
        "bridge; a `read_committed` consumer of the shadow notes when each record arrives "
        "against its timestamp (when it was sent). Under exactly-once a shadow record is "
        "visible once its transaction commits, every `bridge.commit_interval`.",
        "",
        "| delivery | commit interval | records | p50 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.delivery} | {r.commit_interval:g} s | {r.records:,} | {r.p50:.0f} ms "
        f"| {r.p99:.0f} ms | {r.top:.0f} ms |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
