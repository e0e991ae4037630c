"""Shadow topics: check they exist (or create them) and learn their partition counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streamchaos.config import Config
from streamchaos.errors import BridgeError
from streamchaos.kafkatools import submit_topics

log = logging.getLogger(__name__)


def partition_counts(
    admin: AdminClient,
    topics: list[str],
    timeout: float,
    fatal: Callable[[], str | None] = lambda: None,
    every: bool = False,
) -> dict[str, int]:
    """Partition count of each topic that exists; missing topics are absent from the result
    (``every``: of every topic of the cluster, ``topics`` aside).

    Asks in short rounds so an authentication failure (``fatal``) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = admin.list_topics(timeout=min(2.0, timeout))
            break
        except KafkaException as exc:
            admin.poll(0.1)  # error callbacks (e.g. authentication) are served here
            if fatal():
                raise BridgeError(str(fatal())) from exc
            if time.monotonic() >= deadline:
                raise BridgeError(f"cannot reach the Kafka cluster: {exc.args[0]}") from exc
    out = {}
    for name in list(meta.topics) if every else topics:
        tmeta = meta.topics.get(name)
        if tmeta is not None and tmeta.error is None and tmeta.partitions:
            out[name] = len(tmeta.partitions)
    return out


def prepare_shadows(
    admin: AdminClient,
    cfg: Config,
    timeout: float = 30.0,
    fatal: Callable[[], str | None] = lambda: None,
    shadow_admin: AdminClient | None = None,
) -> dict[str, int]:
    """Partition count per source and shadow topic, creating missing shadows where
    ``create_shadow`` is set. ``shadow_admin``: the shadow cluster's, when the shadows
    live on another cluster than the sources (``admin``'s, which is only read).

    A shadow that is missing and not to be created is a startup error: producing to it
    would either fail every record or let broker auto-creation pick a partition count.
    """
    source_names = [r.source for r in cfg.routes]
    shadow_names = [r.shadow for r in cfg.routes]
    if shadow_admin is None or shadow_admin is admin:
        shadow_admin = admin
        counts = partition_counts(admin, source_names + shadow_names, timeout, fatal)
    else:
        counts = partition_counts(admin, source_names, timeout, fatal)
        counts |= partition_counts(shadow_admin, shadow_names, timeout, fatal)
    to_create = []
    for i, route in enumerate(cfg.routes):
        if route.shadow in counts:
            continue
        if not route.create_shadow:
            raise BridgeError(
                f"routes[{i}].shadow: topic {route.shadow!r} does not exist "
                "(create it, or set create_shadow: true)"
            )
        if route.source not in counts:
            raise BridgeError(
                f"routes[{i}].source: topic {route.source!r} does not exist, so its shadow "
                "cannot be created with the same partition count"
            )
        to_create.append(NewTopic(route.shadow, num_partitions=counts[route.source]))
    if to_create:
        submit_topics(shadow_admin, to_create, timeout, exist_ok=True)
        for _ in range(50):  # metadata shows a new topic's partitions a moment later
            counts |= partition_counts(shadow_admin, shadow_names, timeout)
            if all(t.topic in counts for t in to_create):
                break
            time.sleep(0.1)
    sources = {r.source: counts[r.source] for r in cfg.routes if r.source in counts}
    return sources | {r.shadow: counts[r.shadow] for r in cfg.routes}


def prepare_ledger_topic(admin: AdminClient, topic: str, timeout: float = 30.0) -> None:
    """The ledger topic: one partition keeps the journal in order; created when missing."""
    if topic not in partition_counts(admin, [topic], timeout):
        submit_topics(admin, [NewTopic(topic, num_partitions=1)], timeout, exist_ok=True)
