"""/readyz asks every cluster the bridge writes to or reads from."""

from __future__ import annotations

from types import SimpleNamespace

from streamchaos.bridge.health import Health


class Admin:
    def __init__(self, up: bool) -> None:
        self.up = up

    def list_topics(self, timeout: float) -> SimpleNamespace:
        if not self.up:
            raise RuntimeError("broker down")
        return SimpleNamespace(brokers={1: "b"})


def test_ready_only_while_every_cluster_answers():
    source, shadow = Admin(True), Admin(True)
    health = Health([source, shadow], lambda: 2, cache=0.0)
    assert health.readyz() == (200, "ready: 2 partitions")
    shadow.up = False
    assert health.readyz() == (503, "broker unreachable")
    shadow.up, source.up = True, False
    assert health.readyz() == (503, "broker unreachable")
