"""pytest fixtures for tests that need a real Kafka broker.

Broker order: ``KAFKA_BOOTSTRAP_SERVERS`` if set → a Testcontainers ``KafkaContainer``
when a Docker daemon answers → a clear failure (never a skip: a test suite that quietly
skips its broker tests proves nothing).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from streamchaos.kafkatools import create_topics, delete_topics, unique_name

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.1"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a real Kafka broker for the whole session."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    pytest.fail(
        "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS (e.g. `make up` then "
        "`source .local/stack.env`, or run `make test`), or start a Docker daemon for "
        "Testcontainers"
    )


@pytest.fixture(scope="session")
def schema_registry_url() -> str:
    """URL of a registry speaking the Confluent REST API (``SCHEMA_REGISTRY_URL``)."""
    url = os.environ.get("SCHEMA_REGISTRY_URL")
    if not url:
        pytest.fail(
            "no schema registry: set SCHEMA_REGISTRY_URL (`make up` starts one and writes it "
            "to .local/stack.env; `make test` does both)"
        )
    return url


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
