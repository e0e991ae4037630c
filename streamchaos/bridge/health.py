"""``/healthz`` and ``/readyz`` for orchestrators (Kubernetes probes, compose checks).

healthz: the process and its loop are alive (the loop beat within ``stall`` seconds).
readyz: partitions are assigned and each cluster (the source's, and the shadow's when it
is another) answers a metadata request (cached a few seconds so probes cost the clusters
nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class Health:
    def __init__(
        self,
        admins: Sequence[Any],
        assigned: Callable[[], int],
        stall: float = 30.0,
        cache: float = 3.0,
    ) -> None:
        self.admins = admins
        self.assigned = assigned
        self.stall = stall
        self.cache = cache
        self.beat = time.monotonic()
        self.stopping = False
        self._lock = threading.Lock()
        self._checked = -1e9
        self._reachable = False

    def heartbeat(self) -> None:
        self.beat = time.monotonic()

    def healthz(self) -> tuple[int, str]:
        age = time.monotonic() - self.beat
        if age > self.stall:
            return 503, f"stalled: the bridge loop has not run for {age:.0f}s"
        return 200, "ok"

    def readyz(self) -> tuple[int, str]:
        if self.stopping:
            return 503, "stopping"
        if not self.broker_reachable():
            return 503, "broker unreachable"
        count = self.assigned()
        if count == 0:
            return 503, "no partitions assigned"
        return 200, f"ready: {count} partitions"

    def broker_reachable(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.cache:
                try:
                    self._reachable = all(a.list_topics(timeout=2).brokers for a in self.admins)
                except Exception:
                    self._reachable = False
                self._checked = now
            return self._reachable
