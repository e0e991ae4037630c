"""The container tests: a real engine through the Docker API, the images named by settings.

`make test` provides them (scripts/containers.sh: podman + runc, images built locally,
the API on a unix socket). Without an engine these tests fail with the reason, never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from streamchaos.containers import engine_problem

IMAGES = ("STREAMCHAOS_KAFKA_IMAGE", "STREAMCHAOS_REGISTRY_IMAGE", "STREAMCHAOS_IMAGE")


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A ``docker`` client of the engine; fails (with why) when there is none."""
    problem = engine_problem()
    if problem is not None:
        pytest.fail(f"{problem}; `make test` sets one up with scripts/containers.sh")
    missing = [name for name in IMAGES if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: the images to test are named by these settings "
            "(scripts/containers.sh up writes them to .local/containers/containers.env)"
        )
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture
def no_leftovers(engine: Any) -> Iterator[None]:
    """Every container and network a test starts is gone when it ends."""
    containers = {c.id for c in engine.containers.list(all=True)}
    networks = {n.id for n in engine.networks.list()}
    yield
    left = [c for c in engine.containers.list(all=True) if c.id not in containers]
    nets = [n for n in engine.networks.list() if n.id not in networks]
    for c in left:
        c.remove(force=True)
    for n in nets:
        n.remove()
    assert not left, f"containers left behind: {[c.short_id for c in left]}"
    assert not nets, f"networks left behind: {[n.name for n in nets]}"
