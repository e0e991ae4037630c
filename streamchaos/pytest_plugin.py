"""pytest fixtures for integration tests with chaos (registered as a ``pytest11`` plugin).

``kafka_bootstrap``: ``KAFKA_BOOTSTRAP_SERVERS`` if set → a broker container through
Testcontainers when a container engine answers (``DOCKER_HOST`` or Docker's socket) → a
clear failure (never a skip: a suite that quietly skips its broker tests proves nothing).
``schema_registry_url``: ``SCHEMA_REGISTRY_URL`` → a registry container the same way.
The images are ``STREAMCHAOS_KAFKA_IMAGE``/``STREAMCHAOS_REGISTRY_IMAGE`` (see
streamchaos.containers). ``topic_factory``: uuid-named topics, deleted after the test.
``chaos_bridge``: a factory that starts a bridge from a config dict and stops it (release,
flush, commit) at teardown. See docs/pytest-plugin.md.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamchaos.kafkatools import create_topics, delete_topics, unique_name


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a real Kafka broker for the whole session."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    from streamchaos.containers import engine_problem, kafka_container

    problem = engine_problem()
    if problem is not None:
        pytest.fail(
            "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS (e.g. `make up` then "
            "`source .local/stack.env`, or run `make test`), or give Testcontainers a "
            f"container engine ({problem})"
        )
    with kafka_container() as kafka:
        yield kafka.address


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """URL of a registry speaking the Confluent REST API, for the whole session."""
    url = os.environ.get("SCHEMA_REGISTRY_URL")
    if url:
        yield url
        return
    from streamchaos.containers import engine_problem, registry_container

    problem = engine_problem()
    if problem is not None:
        pytest.fail(
            "no schema registry: set SCHEMA_REGISTRY_URL (`make up` starts one and writes it "
            "to .local/stack.env; `make test` does both), or give Testcontainers a "
            f"container engine ({problem})"
        )
    with registry_container() as registry:
        yield registry.address


TopicFactory = Callable[..., str]


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """``topic_factory(partitions=1, prefix="t", suffix="", config=None)`` → a new topic.

    Topics are deleted after the test.
    """
    made: list[str] = []

    def make(
        partitions: int = 1,
        prefix: str = "t",
        suffix: str = "",
        config: dict[str, str] | None = None,
    ) -> str:
        name = unique_name(prefix) + suffix
        create_topics(kafka_bootstrap, [name], partitions, config=config)
        made.append(name)
        return name

    yield make
    delete_topics(kafka_bootstrap, made)


@pytest.fixture
def group_id() -> str:
    return unique_name("group")


@pytest.fixture
def chaos_bridge(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[Any]:
    """``chaos_bridge(config_dict, wait=True)`` → a running ``streamchaos.Bridge``.

    Fills in what a test rarely cares about: the broker, a fresh consumer group, an
    ephemeral metrics port, the registry URL (when a route is Avro). Waits until partitions
    are assigned; every bridge is stopped at teardown, and a failed one fails the test.
    """
    from streamchaos.bridge import Bridge
    from streamchaos.config import config_from_dict

    started: list[Any] = []

    def make(config: dict[str, Any], wait: bool = True, timeout: float = 60.0) -> Any:
        raw = copy.deepcopy(config)
        raw.setdefault("experiment", "pytest")
        kafka = raw.setdefault("kafka", {})
        kafka.setdefault("bootstrap_servers", kafka_bootstrap)
        kafka.setdefault("group_id", unique_name("chaos"))
        raw.setdefault("metrics", {"port": 0})
        if any(
            r.get("format") == "avro" and not r.get("schema_file") for r in raw.get("routes", [])
        ):
            url = request.getfixturevalue("schema_registry_url")
            raw.setdefault("schema_registry", {}).setdefault("url", url)
        bridge = Bridge(config_from_dict(raw, env={}), keep_ledger=True).start()
        started.append(bridge)
        if wait:
            bridge.wait_until_assigned(timeout)
        return bridge

    yield make
    codes = [bridge.stop() for bridge in started]
    assert all(code == 0 for code in codes), f"a chaos bridge exited with {codes}"
