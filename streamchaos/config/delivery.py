"""``delivery: exactly-once``: what it needs, and what it refuses, naming the field.

Each commit interval the bridge's outputs (shadow records, ledger-topic lines) and the
source offsets they came from go in one Kafka transaction (KIP-98, KIP-447), so a crash
or a rebalance neither loses nor repeats a record.
"""

from __future__ import annotations

import socket

from streamchaos.config.clients import KafkaSettings

# producer properties a transaction needs as the bridge sets them: why each is refused
TRANSACTION_KEYS = {
    "transactional.id": "the bridge sets it: give kafka.transactional_id",
    "enable.idempotence": "transactions need the idempotent producer",
    "acks": "transactions need acks=all",
    "max.in.flight.requests.per.connection": "the idempotent producer needs at most 5",
}
TRANSACTION_TIMEOUT_MS = 10_000  # a crashed member's open transaction is aborted by then


def exactly_once_problems(kafka: KafkaSettings, commit_interval: float) -> list[str]:
    """Why an experiment cannot run exactly-once, one line per field (empty: it can)."""
    if kafka.shadow is not None:
        return [
            "delivery: exactly-once cannot span two clusters (kafka.shadow): one Kafka "
            "transaction cannot hold the shadow records on one cluster and the source "
            "offsets on the other"
        ]
    problems = []
    for key, value in kafka.producer.items():
        why = TRANSACTION_KEYS.get(key)
        allowed = {"acks": ("all", "-1", -1), "enable.idempotence": (True, "true")}
        if key == "max.in.flight.requests.per.connection" and int(str(value)) <= 5:
            continue
        if why is not None and value not in allowed.get(key, ()):
            problems.append(f"kafka.producer.{key}: {value!r} with delivery: exactly-once ({why})")
    timeout = int(str(kafka.producer.get("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)))
    if timeout <= commit_interval * 1000:
        problems.append(
            f"kafka.producer.transaction.timeout.ms: {timeout} must exceed "
            f"bridge.commit_interval ({commit_interval:g}s): a transaction lasts "
            "one commit interval"
        )
    return problems


def transactional_id(experiment: str, kafka: KafkaSettings) -> str:
    """This member's transactional id: stable across its restarts, so a restarted
    member fences its crashed self and aborts what it left open."""
    return kafka.transactional_id or f"streamchaos.{experiment}.{socket.gethostname()}"
