"""The container tests: a real engine through the Docker API, the images named by settings.

`make test` provides them (scripts/containers.sh: podman + runc, images built locally,
the API on a unix socket, the image names in STREAMCHAOS_*_IMAGE). Elsewhere, any local
engine with the public images does. Without an engine these tests fail, never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from streamchaos.containers import engine_problem

BRIDGE_IMAGE = "streamchaos:latest"  # `docker build -t streamchaos .` where images are pulled


def bridge_image() -> str:
    return os.environ.get("STREAMCHAOS_IMAGE") or BRIDGE_IMAGE


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A ``docker`` client of the engine; fails (with why) when there is none. The images
    are the settings' (scripts/containers.sh writes them), else the public ones."""
    problem = engine_problem()
    if problem is not None:
        pytest.fail(f"{problem}; `make test` sets one up with scripts/containers.sh")
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture
def no_leftovers(engine: Any) -> Iterator[None]:
    """Every container, network and volume a test starts is gone when it ends."""
    containers = {c.id for c in engine.containers.list(all=True)}
    networks = {n.id for n in engine.networks.list()}
    volumes = {v.id for v in engine.volumes.list()}
    yield
    left = [c for c in engine.containers.list(all=True) if c.id not in containers]
    nets = [n for n in engine.networks.list() if n.id not in networks]
    vols = [v for v in engine.volumes.list() if v.id not in volumes]
    for c in left:
        c.remove(force=True, v=True)
    for n in nets:
        n.remove()
    for v in vols:
        v.remove(force=True)
    assert not left, f"containers left behind: {[c.short_id for c in left]}"
    assert not nets, f"networks left behind: {[n.name for n in nets]}"
    assert not vols, f"volumes left behind: {[v.id for v in vols]}"
