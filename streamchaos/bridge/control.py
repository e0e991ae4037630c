"""How a bridge is started, stopped, paused and watched, from any thread or over HTTP."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamchaos.bridge.checkpoint import TP
from streamchaos.bridge.health import Health
from streamchaos.errors import BridgeError
from streamchaos.httpserver import ControlServer, Request
from streamchaos.logs import ClientLog, Repeats

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from streamchaos.bridge.live import LivePlan
    from streamchaos.config import Config
    from streamchaos.ledger import Ledger

log = logging.getLogger(__name__)

ASSIGN_GRACE = 60.0
"""--idle-exit starts counting at the first assignment, or after this many seconds
(a restarted member may wait for a dead one's session to expire before it gets any)."""


class Control(ABC):
    """The bridge's controls; ``run`` (the subclass's) does the work."""

    cfg: Config
    registry: CollectorRegistry
    ledger: Ledger | None
    live: LivePlan | None
    assigned: set[TP]
    _consumer: Any

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.error: Exception | None = None  # why a started bridge failed
        self.health: Health | None = None
        self._thread: threading.Thread | None = None
        self._assigned_event = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.repeats = Repeats(log)  # client errors: one line per kind per 30 s
        # what every Kafka client of the bridge is given: errors and logs come back here
        self.callbacks = {"error_cb": self._client_error, "logger": ClientLog(self.repeats)}
        self._server: ControlServer | None = None
        self._fatal: str | None = None  # why the loop must stop (set from client callbacks)

    @abstractmethod
    def run(self, idle_exit: float | None = None) -> int:
        """Bridge until stopped; the exit code (the bridge's own loop)."""

    def stop(self, wait: bool = True, timeout: float = 120.0) -> int | None:
        """Ask the bridge to stop: release held records, flush, commit.

        For a bridge started with ``start()``, waits (by default) and returns its exit code;
        from a signal handler or the foreground, call with ``wait=False``.
        """
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise BridgeError(f"the bridge did not stop within {timeout:.0f}s")
        return self.exit_code

    def start(self, idle_exit: float | None = None) -> Any:
        """Run in a background thread (for tests and embedding); returns ``self``."""
        if self._thread is not None:
            raise BridgeError("this bridge was started already")
        self._thread = threading.Thread(
            target=self._run_in_thread, args=(idle_exit,), name="streamchaos-bridge", daemon=True
        )
        self._thread.start()
        return self

    def _run_in_thread(self, idle_exit: float | None) -> None:
        try:
            self.run(idle_exit)
        except Exception as exc:  # surfaced through exit_code and the log
            log.error("bridge failed: %s", exc)
            self.error = exc
            self.exit_code = 1
            self._assigned_event.set()

    def wait_until_assigned(self, timeout: float = 60.0) -> set[TP]:
        """Block until partitions are assigned (or the bridge failed); return them."""
        if not self._assigned_event.wait(timeout):
            raise BridgeError(f"no partitions assigned within {timeout:.0f}s")
        if self.error is not None:
            raise BridgeError(f"the bridge failed: {self.error}") from self.error
        return set(self.assigned)

    @property
    def ledger_entries(self) -> list[dict[str, Any]]:
        """Ledger entries written so far (``keep_ledger=True``)."""
        if self.ledger is None or self.ledger.entries is None:
            return []
        return list(self.ledger.entries)

    def counters(self) -> dict[str, float]:
        """Every streamchaos sample as ``name{labels}`` → value (what /metrics shows)."""
        out = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def pause(self) -> None:
        """Kill switch: all faults off, held records released → pure passthrough."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def toggle_pause(self) -> None:
        (self.resume if self._paused.is_set() else self.pause)()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def metrics_port(self) -> int | None:
        return self._server.port if self._server else None

    def beat(self) -> None:
        """Once per loop turn: the liveness probe's heartbeat, and counted repeats of a
        client error whose interval is over."""
        if self.health is not None:
            self.health.heartbeat()
        self.repeats.tick()

    def stopping(self) -> None:
        if self.health is not None:
            self.health.stopping = True

    def serve_control(self, cfg: Config) -> None:
        """/metrics, the probes, the kill switch and the fault API on the metrics port."""
        if not cfg.metrics.enabled or self.health is None:
            return
        token = cfg.control.token_value()
        self._server = ControlServer(self.registry, cfg.metrics.bind, cfg.metrics.port, token)
        health = self.health
        self._server.add("GET", "/healthz", lambda req: health.healthz(), open=True)
        self._server.add("GET", "/readyz", lambda req: health.readyz(), open=True)
        self._server.add("POST", "/pause", self._http(self.pause, "paused"))
        self._server.add("POST", "/resume", self._http(self.resume, "resumed"))
        if self.live is not None:
            self.live.serve_on(self._server)
        self._server.start()
        log.info("metrics on http://%s:%d/metrics", cfg.metrics.bind, self._server.port)

    @staticmethod
    def _http(action: Any, answer: str) -> Any:
        def handle(req: Request) -> tuple[int, str]:
            action()
            return 200, answer

        return handle

    def stop_control(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _idle_over(self, idle_exit: float | None, idle: float) -> bool:
        """Idle means caught up, not a slow first fetch (which the grace still bounds)."""
        if idle_exit is None or idle < idle_exit:
            return False
        return self._caught_up() or idle >= idle_exit + ASSIGN_GRACE

    def _caught_up(self) -> bool:
        """Every assigned partition's position has reached its high watermark."""
        try:
            tps = [TopicPartition(t, p) for t, p in self.assigned]
            for tp in self._consumer.position(tps):
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0 or tp.offset < 0 or tp.offset < high:
                    return bool(high == 0)  # an empty partition has nothing to wait for
            return True
        except KafkaException:
            return False

    # -- errors -----------------------------------------------------------------------

    def _client_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = f"fatal Kafka client error: {err.str()}"
        elif err.code() in _AUTH_ERRORS:
            self._fatal = f"Kafka authentication failed: {err.str()}"
        else:
            self.repeats.warning(f"kafka {err.name()}", f"kafka: {err.str()}")

    def _consume_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = f"fatal consumer error: {err.str()}"
        else:
            self.repeats.warning(f"consume {err.name()}", f"consume: {err.str()}")


_AUTH_ERRORS = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
}
