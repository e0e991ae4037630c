"""Shadow topics (and long-hold topics): check they exist (or create them) and learn their
partition counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from streamchaos.config import Config
from streamchaos.config.holds import hold_retention_ms, hold_topics, longest_hold
from streamchaos.errors import BridgeError
from streamchaos.hold_record import hold_topic
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
        counts |= create_topics_and_wait(shadow_admin, to_create, timeout)
    sources = {r.source: counts[r.source] for r in cfg.routes if r.source in counts}
    return sources | {r.shadow: counts[r.shadow] for r in cfg.routes} | prepare_holds(admin, cfg)


def prepare_holds(admin: AdminClient, cfg: Config, timeout: float = 30.0) -> dict[str, int]:
    """The long-hold topics (``long_hold.py``), created when missing with
    ``bridge.hold_lanes`` partitions and a retention that outlasts the route's longest
    hold; one that exists must keep its records as long. Their partition counts."""
    wanted = hold_topics(cfg)
    keep = {
        hold_topic(r.shadow, cfg.safety.shadow_suffix): hold_retention_ms(
            longest_hold(r.faults, cfg.bridge.hold_horizon) or 0.0
        )
        for r in cfg.routes
    }
    counts = partition_counts(admin, list(wanted), timeout)
    missing = [
        NewTopic(t, num_partitions=n, config={"retention.ms": str(keep[t])})
        for t, n in wanted.items()
        if t not in counts
    ]
    for topic in [t for t in wanted if t in counts]:
        kept = topic_retention_ms(admin, topic, timeout)
        if 0 <= kept < keep[topic]:
            raise BridgeError(
                f"bridge.hold_horizon: long-hold topic {topic!r} keeps records {kept} ms, less "
                f"than its longest hold and a week ({keep[topic]} ms): raise its retention.ms "
                "(kafka-configs --alter) or delete it"
            )
    if missing:
        counts |= create_topics_and_wait(admin, missing, timeout)
    return counts


def topic_retention_ms(admin: AdminClient, topic: str, timeout: float) -> int:
    """A topic's ``retention.ms`` (-1: forever)."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = admin.describe_configs([resource])[resource].result(timeout=timeout)
    except KafkaException as exc:
        raise BridgeError(f"{topic}: cannot read its configuration: {exc.args[0]}") from exc
    return int(entries["retention.ms"].value)


def prepare_ledger_topic(
    admin: AdminClient, topic: str, timeout: float = 30.0, config: dict[str, str] | None = None
) -> None:
    """The ledger topic (or its clock topic, compacted: ``config``): one partition keeps
    the journal in order; created when missing."""
    if topic not in partition_counts(admin, [topic], timeout):
        new = NewTopic(topic, num_partitions=1, config=config or {})
        create_topics_and_wait(admin, [new], timeout)


def create_topics_and_wait(
    admin: AdminClient, topics: list[NewTopic], timeout: float
) -> dict[str, int]:
    """Create ``topics`` (those that exist meanwhile are fine) and wait until metadata shows
    them, a moment later; returns their partition counts (those shown)."""
    submit_topics(admin, topics, timeout, exist_ok=True)
    names = [t.topic for t in topics]
    counts: dict[str, int] = {}
    for _ in range(50):
        counts = partition_counts(admin, names, timeout)
        if all(name in counts for name in names):
            break
        time.sleep(0.1)
    return counts
