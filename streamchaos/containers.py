"""Kafka and a schema registry in containers: the pytest plugin's Testcontainers path.

The images are settings, ``STREAMCHAOS_KAFKA_IMAGE`` and ``STREAMCHAOS_REGISTRY_IMAGE``,
defaulting to the public images a Docker Hub user pulls. Both are configured only through
the environment conventions of those images (``KAFKA_FOO_BAR`` → ``foo.bar`` for
apache/kafka, Quarkus settings for apicurio/apicurio-registry), so the same code runs the
look-alikes that ``scripts/containers.sh`` builds where no registry is reachable.

Each container is removed by its id when its ``with`` block ends (Testcontainers'
``stop``), whatever the test did. The engine is a local one (a unix socket, or TCP on this
host): ports are published on 127.0.0.1 and the broker advertises that address.
"""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

KAFKA_IMAGE = "apache/kafka:4.1.1"
REGISTRY_IMAGE = "apicurio/apicurio-registry:3.3.3"
CCOMPAT_PATH = "/apis/ccompat/v7"


def kafka_image() -> str:
    return os.environ.get("STREAMCHAOS_KAFKA_IMAGE") or KAFKA_IMAGE


def registry_image() -> str:
    return os.environ.get("STREAMCHAOS_REGISTRY_IMAGE") or REGISTRY_IMAGE


def engine_problem() -> str | None:
    """Why no container engine answers (``None`` when one does)."""
    try:
        import docker
        import testcontainers.core.wait_strategies  # noqa: F401 - testcontainers 4.15+
    except ImportError as exc:
        return f"{exc}: pip install 'testcontainers>=4.15' (or 'streamchaos[dev]')"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure to reach it is the same answer: no engine
        where = os.environ.get("DOCKER_HOST", "the default Docker socket")
        return f"no container engine answers at {where}: {exc}"
    return None


@dataclass(frozen=True)
class Running:
    """A started service: its address from the host and from its network's containers."""

    container: DockerContainer
    address: str
    internal: str

    @property
    def id(self) -> str:
        return self.container.get_container_id()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _container(
    image: str, port: int, network: Network | None, alias: str
) -> tuple[DockerContainer, str, int]:
    """A container of ``image`` whose ``port`` is published on a free port of 127.0.0.1 (a
    local engine), on ``network`` as ``alias`` when given → (container, host, host port)."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image)
    host_port = _free_port()
    # the Docker SDK's (ip, port) binding: with_bind_ports() would bind every interface
    container.ports[f"{port}/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]
    if network is not None:
        container.with_network(network).with_network_aliases(alias)
    return container, "127.0.0.1", host_port


def _kafka_env(advertised_host: str, host_port: int, alias: str) -> dict[str, str]:
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093,HOST://:9094",
        "KAFKA_ADVERTISED_LISTENERS": (
            f"PLAINTEXT://{alias}:9092,HOST://{advertised_host}:{host_port}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT"
        ),
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }


def _wait_for_log(container: DockerContainer, pattern: str, timeout: float) -> None:
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    strategy = LogMessageWaitStrategy(re.compile(pattern)).with_startup_timeout(int(timeout))
    strategy.wait_until_ready(container)


@contextmanager
def _started(container: DockerContainer, what: str) -> Iterator[DockerContainer]:
    try:
        container.start()
    except Exception as exc:
        container.stop()
        raise RuntimeError(f"{what} container did not start: {exc}") from exc
    try:
        yield container
    finally:
        container.stop()


@contextmanager
def kafka_container(
    image: str | None = None,
    network: Network | None = None,
    alias: str = "kafka",
    timeout: float = 120.0,
) -> Iterator[Running]:
    """A single-node KRaft broker; ``address`` is its bootstrap from the host."""
    container, host, port = _container(image or kafka_image(), 9094, network, alias)
    for name, value in _kafka_env(host, port, alias if network else "localhost").items():
        container.with_env(name, value)
    with _started(container, "Kafka") as started:
        try:
            _wait_for_log(started, r"Kafka Server started", timeout)
        except Exception as exc:
            raise RuntimeError(f"Kafka ({started.image}) not ready: {exc}") from exc
        yield Running(started, f"{host}:{port}", f"{alias}:9092")


@contextmanager
def registry_container(
    image: str | None = None,
    network: Network | None = None,
    alias: str = "schema-registry",
    timeout: float = 120.0,
) -> Iterator[Running]:
    """An Apicurio Registry; ``address`` is its Confluent-compatible URL from the host."""
    container, host, port = _container(image or registry_image(), 8080, network, alias)
    for setting in ("GROUP", "ARTIFACT", "ARTIFACT_VERSION"):  # tests delete their subjects
        container.with_env(f"APICURIO_REST_DELETION_{setting}_ENABLED", "true")
    url = f"http://{host}:{port}{CCOMPAT_PATH}"
    with _started(container, "schema registry") as started:
        _wait_for_http(started, f"{url}/subjects", timeout)
        yield Running(started, url, f"http://{alias}:8080{CCOMPAT_PATH}")


def _wait_for_http(container: DockerContainer, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        container.get_wrapped_container().reload()
        if container.get_wrapped_container().status == "exited":
            out, err = container.get_logs()
            tail = (out + err).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{container.image} exited before {url} answered:\n{tail}")
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s ({last})")
