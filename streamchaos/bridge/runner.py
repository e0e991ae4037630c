"""The consumer→producer bridge: one consumer group member, one hot loop, nothing lost.

Records go to their route's shadow topic (same partition when the shadow has enough),
key, value, headers and timestamp preserved, plus a lineage header; faults change only
the records they select. Offsets are committed only for what landed (``offsets.py``).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from streamchaos.bridge.forward import Forwarder, RouteState
from streamchaos.bridge.health import Health
from streamchaos.bridge.offsets import TP, Batch, OffsetTracker
from streamchaos.bridge.topics import prepare_ledger_topic, prepare_shadows
from streamchaos.codec import Registry, RegistryUnavailable, codec_for
from streamchaos.config import Config, Route
from streamchaos.errors import BridgeError
from streamchaos.faults.base import FaultContext
from streamchaos.httpserver import ControlServer
from streamchaos.kafkaconf import admin_conf, consumer_conf, producer_conf, registry_conf
from streamchaos.ledger import Ledger
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)

COMMIT_FLUSH_TIMEOUT = 10.0
"""Without success reports, each interval's commit first flushes the producer, this long
at most; a backlog the broker is slow to take is drained then (reading waits, which is
backpressure), and what is still in flight after it waits for the next commit."""

ASSIGN_GRACE = 60.0
"""--idle-exit starts counting at the first assignment, or after this many seconds
(a restarted member may wait for a dead one's session to expire before it gets any)."""

GC_GEN0_THRESHOLD = 50_000
"""Allocations between young-generation collections while ``run`` loops (default 700).
Each consumed batch allocates thousands of short-lived objects (messages, header lists),
so with the default the collector ran every ~500 records; docs/benchmarks.md has the
bridge with and without this. Cycles are still collected, just less often."""
GC_THRESHOLDS = (GC_GEN0_THRESHOLD, 50, 100)  # all three generations (Python's: 700, 10, 10)


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections(enabled: bool) -> Iterator[None]:
    """Raise the collector's thresholds for the duration (process-wide, so opt-in). Bridges
    running side by side share the setting; the last one out restores the old values."""
    global _gc_users, _gc_saved
    if not enabled:
        yield
        return
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)


class Bridge:
    """Run with ``run()`` (blocking); ``stop()``/``pause()``/``resume()`` from any thread."""

    def __init__(
        self,
        cfg: Config,
        *,
        registry: CollectorRegistry | None = None,
        keep_ledger: bool = False,
        tune_gc: bool = False,
    ) -> None:
        """``tune_gc``: raise the garbage collector's thresholds while ``run`` loops (the
        CLI does; off by default because the setting is process-wide)."""
        self.cfg = cfg
        self.keep_ledger = keep_ledger
        self.tune_gc = tune_gc
        self.exit_code: int | None = None
        self._thread: threading.Thread | None = None
        self._assigned_event = threading.Event()
        self.health: Health | None = None
        self.error: Exception | None = None  # why a started bridge failed
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, cfg)
        self.tracker = OffsetTracker()
        self.tracker.on_complete = self._batch_complete
        self.assigned: set[TP] = set()
        self.ever_assigned: set[TP] = set()
        self.clock: Callable[[], float] = time.monotonic
        self._t0 = 0.0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._fatal: str | None = None
        self._routes: dict[str, RouteState] = {}
        self._fwd: Forwarder | None = None
        self._consumer: Any = None
        self._producer: Any = None
        self._server: ControlServer | None = None
        self.ledger: Ledger | None = None
        # a report per delivered record only when ledger lines need the shadow offsets
        self.success_reports = bool(cfg.ledger.path or cfg.ledger.topic or keep_ledger)

    # -- control --------------------------------------------------------------------

    def stop(self, wait: bool = True, timeout: float = 120.0) -> int | None:
        """Ask the bridge to stop: release held records, flush, commit (see ``_shutdown``).

        For a bridge started with ``start()``, waits (by default) and returns its exit code;
        from a signal handler or the foreground, call with ``wait=False``.
        """
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise BridgeError(f"the bridge did not stop within {timeout:.0f}s")
        return self.exit_code

    def start(self, idle_exit: float | None = None) -> Bridge:
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

    def _http_pause(self) -> tuple[int, str]:
        self.pause()
        return 200, "paused"

    def _http_resume(self) -> tuple[int, str]:
        self.resume()
        return 200, "resumed"

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def metrics_port(self) -> int | None:
        return self._server.port if self._server else None

    @property
    def started_at(self) -> float | None:
        """Wall-clock epoch seconds of the experiment's time 0 (None before ``run``)."""
        return self._fwd.epoch if self._fwd is not None else None

    def now(self) -> float:
        """Seconds since the experiment started (the schedules' clock)."""
        return self.clock() - self._t0

    # -- lifecycle ------------------------------------------------------------------

    def run(self, idle_exit: float | None = None) -> int:
        """Bridge until ``stop()`` or ``idle_exit`` seconds without input; return an exit code."""
        with fewer_collections(self.tune_gc):
            try:
                self._open()
                self._loop(idle_exit)
            finally:
                code = self.exit_code = self._shutdown()
        return code

    def _open(self) -> None:
        cfg = self.cfg
        aconf = admin_conf(cfg)
        aconf["error_cb"] = self._client_error
        admin = AdminClient(aconf)
        self.health = Health(admin, lambda: len(self.assigned))
        shadows = prepare_shadows(admin, cfg, fatal=lambda: self._fatal)
        if cfg.ledger.topic:
            prepare_ledger_topic(admin, cfg.ledger.topic)
        sr = cfg.schema_registry
        registry = (
            Registry(sr.url, timeout=sr.timeout, backoff=sr.retry_backoff, extra=registry_conf(cfg))
            if sr.url
            else None
        )
        for route in cfg.routes:
            ctx = self._fault_context(route, registry)
            self._routes[route.source] = RouteState(route, shadows[route.shadow], cfg.seed, ctx)
        if registry is not None:
            _preload_schemas(registry, cfg.routes, sr.timeout)
        pconf = producer_conf(cfg, self.success_reports)
        pconf["error_cb"] = self._client_error
        self._producer = Producer(pconf)
        self._t0 = self.clock()
        self.ledger = Ledger(
            cfg.experiment, cfg.ledger.path, cfg.ledger.topic, self._producer, keep=self.keep_ledger
        )
        # the forwarder picks delivery callbacks by ``ledger.active``: the two must agree
        assert self.ledger.active == self.success_reports
        self._fwd = Forwarder(
            cfg, self._producer, self.tracker, self.metrics, self.ledger, self._routes, time.time()
        )
        self._fwd.on_consume_error = self._consume_error
        self.tracker.held_floor = self._fwd.held_floor
        cconf = consumer_conf(cfg)
        cconf["error_cb"] = self._client_error
        self._consumer = Consumer(cconf)
        self._consumer.subscribe(
            [r.source for r in cfg.routes],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        if cfg.metrics.enabled:
            self._server = ControlServer(self.registry, cfg.metrics.bind, cfg.metrics.port)
            self._server.add("GET", "/healthz", self.health.healthz)
            self._server.add("GET", "/readyz", self.health.readyz)
            self._server.add("POST", "/pause", self._http_pause)
            self._server.add("POST", "/resume", self._http_resume)
            self._server.start()
            log.info("metrics on http://%s:%d/metrics", cfg.metrics.bind, self._server.port)

    def _fault_context(self, route: Route, registry: Registry | None) -> FaultContext:
        """The codec and reporting hooks record-level faults of ``route`` use."""
        codec = codec_for(route.format, registry, route.schema_file)
        ctx = FaultContext(codec, route.source, route.shadow)
        undecodable = self.metrics.undecodable
        errors = self.metrics.fault_errors
        logged: set[tuple[str, str]] = set()

        def on_undecodable(reason: str) -> None:
            undecodable.labels(route=route.source, reason=reason).inc()

        def on_error(fault: str, reason: str, message: str) -> None:
            errors.labels(route=route.source, fault=fault, reason=reason).inc()
            if (fault, reason) not in logged:  # once per cause, the counter has the rest
                logged.add((fault, reason))
                log.error(
                    "%s: fault %s cannot apply (%s): %s", route.source, fault, reason, message
                )

        ctx.undecodable = on_undecodable
        ctx.error = on_error
        return ctx

    def _loop(self, idle_exit: float | None) -> None:
        assert self._fwd is not None
        fwd = self._fwd
        consume = self._consumer.consume
        poll = self._producer.poll
        size = self.cfg.bridge.batch_size
        timeout = self.cfg.bridge.poll_timeout
        interval = self.cfg.bridge.commit_interval
        last_input = next_commit = self.now()
        paused = False
        beat = self.health.heartbeat if self.health else (lambda: None)
        send = fwd.ledger.send
        while not self._stop.is_set():
            beat()
            now = self.now()
            if self._paused.is_set() != paused:
                paused = self._set_paused(not paused, now)
            if fwd.engines:
                fwd.tick(now)
            msgs = consume(size, timeout)
            if msgs:
                fwd.forward(msgs, self.now())
                last_input = now
            poll(0)
            send()  # ledger lines the delivery reports just wrote, to the ledger topic
            if self._fatal:
                raise BridgeError(self._fatal)
            if now >= next_commit:
                self._commit(land=True)
                fwd.update_gauges()
                next_commit = self.now() + interval  # a long flush is not taken from it
            if not self.ever_assigned:  # a group join is not idleness (up to a minute)
                last_input = max(last_input, min(now, ASSIGN_GRACE))
            if self._idle_over(idle_exit, now - last_input):
                log.info("no input for %.1fs: stopping (--idle-exit)", idle_exit)
                break

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
                    return high == 0  # an empty partition has nothing to wait for
            return True
        except KafkaException:
            return False

    def _set_paused(self, paused: bool, now: float) -> bool:
        assert self._fwd is not None
        for _, engine in self._fwd.engines:
            engine.paused = paused
        if paused:
            self._fwd.tick(now)  # episodes end
            released = self._fwd.release(None, now)
            log.warning("paused: all faults off, %d held records released", released)
        else:
            log.warning("resumed: faults back on")
        return paused

    def _shutdown(self) -> int:
        """Stop cleanly without losing anything.

        1. stop consuming (the loop has returned);
        2. release every held record and produce it;
        3. flush the producer, so every output is acknowledged or finally failed;
        4. end open fault episodes (their counts are complete now);
        5. commit what landed (synchronously; the ledger file is flushed first);
        6. close the consumer (leaves the group; its revoke callback finds nothing left);
        7. close the ledger, stop the HTTP server.
        Exit code 1 when a delivery (shadow record or ledger line) finally failed or the
        flush timed out, else 0.
        """
        code = 0
        if self.health is not None:
            self.health.stopping = True
        now = self.now()
        if self._fwd is not None:
            released = self._fwd.release(None, now)
            if released:
                log.info("released %d held records", released)
        if self._producer is not None:
            left = self._flush()
            if left:
                log.error(
                    "%d records undelivered after %.0fs", left, self.cfg.bridge.shutdown_timeout
                )
                code = 1
        if self._fwd is not None:  # after the flush: the episodes' counts are complete
            self._fwd.close_episodes(now)
            if self._producer is not None and self.cfg.ledger.topic:
                self._flush()
        if self._consumer is not None:
            self._commit()
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer close: %s", exc)
        if self._fwd is not None:
            self._fwd.update_gauges()
        if self.ledger is not None:
            self.ledger.close()
        if self._server is not None:
            self._server.stop()
        if self.tracker.failed_outputs:
            log.error(
                "%d outputs (shadow records or ledger lines) could not be delivered; their "
                "source offsets were not committed and will be read again on restart",
                self.tracker.failed_outputs,
            )
            code = 1
        if self.ledger is not None and self.ledger.failed:
            log.error("%d episode lines did not reach the ledger topic", self.ledger.failed)
            code = 1
        for state in self._routes.values():
            log.info(
                "route %s: consumed=%d produced=%d failed=%d",
                state.name,
                state.consumed,
                state.produced,
                state.failed,
            )
        return code

    def _flush(self) -> int:
        """Flush the producer until nothing is in flight, ledger lines written by the
        delivery reports it serves included; returns what is left when time runs out."""
        deadline = time.monotonic() + self.cfg.bridge.shutdown_timeout
        assert self._producer is not None
        while True:
            if self.ledger is not None:
                self.ledger.send(deadline)
            left = self._land(max(0.0, deadline - time.monotonic()))
            waiting = len(self.ledger.outbox) if self.ledger is not None else 0
            if left or not waiting or time.monotonic() >= deadline:
                return left + waiting

    def _land(self, timeout: float) -> int:
        """Flush the producer; returns what is still in flight. Without success reports, a
        flush that empties it is what completes the batches (``OffsetTracker.all_landed``)."""
        left = int(self._producer.flush(timeout))
        if left == 0 and not self.success_reports:
            self.tracker.all_landed()
        return left

    def _batch_complete(self, batch: Batch) -> None:
        """Count what landed per route; log and count what finally failed (shadow records,
        and the ledger-topic lines of the route's injections)."""
        failed: dict[str, int] = {}  # shadow records, by route
        by_shadow = self._fwd.by_shadow if self._fwd is not None else {}
        for err, msg in batch.failures:
            state = by_shadow.get(msg.topic())
            if state is not None:
                failed[state.name] = failed.get(state.name, 0) + 1
            log.error(
                "delivery to %s[%s] failed finally (%s); its source offset will not be committed",
                msg.topic(),
                msg.partition(),
                err,
            )
        for name, outputs in batch.outputs_by_route.items():
            ok = outputs - failed.get(name, 0)
            self._routes[name].produced += ok
            self.metrics.produced.labels(route=name).inc(ok)
        for name in failed.keys() | batch.line_failures.keys():
            count = failed.get(name, 0) + batch.line_failures.get(name, 0)
            self._routes[name].failed += count
            self.metrics.produce_errors.labels(route=name).inc(count)

    # -- offsets and rebalancing ----------------------------------------------------

    def _commit(self, tps: list[TP] | None = None, land: bool = False) -> None:
        """Commit what landed; the ledger file is flushed first, so no committed offset's
        ground truth can be lost to a crash between the two. Without success reports,
        what landed is known after a flush of the producer: ``land`` flushes first (the
        revocation and shutdown paths have just flushed, with their own time limit)."""
        if self.ledger is not None:
            self.ledger.flush()
        if land and not self.success_reports and self._producer is not None:
            left = self._land(COMMIT_FLUSH_TIMEOUT)
            if left:
                log.warning("%d records still in flight after %.0fs", left, COMMIT_FLUSH_TIMEOUT)
        points = self.tracker.to_commit(tps)
        if points:
            offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
                self.tracker.committed(points)
            except KafkaException as exc:
                log.warning("commit failed, will retry: %s", exc.args[0])
        for name in self._routes:
            lag = sum(self.tracker.lag(tp) for tp in self.tracker.partitions() if tp[0] == name)
            self.metrics.commit_lag.labels(route=name).set(lag)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self.assigned.update(tps)
        self.ever_assigned.update(tps)
        log.info("assigned %s", _fmt(tps))
        if self.assigned:
            self._assigned_event.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Hand partitions over without loss.

        1. release what faults hold for these partitions and produce it;
        2. flush the producer so every output is acknowledged;
        3. commit their commit points synchronously;
        4. forget their state (fault instances included).
        """
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.info("revoked %s", _fmt(tps))
        if self._fwd is not None:
            self._fwd.release(tps, self.now())
        if self._producer is not None:
            self._flush()
        self._commit(tps)
        self._forget(tps)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %s (not committed; the new owner re-reads them)", _fmt(tps))
        self._forget(tps)

    def _forget(self, tps: list[TP]) -> None:
        self.tracker.forget(tps)
        self.assigned.difference_update(tps)
        for state in self._routes.values():
            if state.engine is not None:
                state.engine.forget(p for t, p in tps if t == state.name)

    # -- errors -----------------------------------------------------------------------

    def _client_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = f"fatal Kafka client error: {err.str()}"
        elif err.code() in _AUTH_ERRORS:
            self._fatal = f"Kafka authentication failed: {err.str()}"
        else:
            log.warning("kafka: %s", err.str())

    def _consume_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = f"fatal consumer error: {err.str()}"
        else:
            log.warning("consume: %s", err.str())


_AUTH_ERRORS = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
}


def _fmt(tps: list[TP]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"


def _preload_schemas(registry: Registry, routes: list[Route], budget: float) -> None:
    """The latest value schema of each Avro route whose faults decode records, looked up
    before consuming (subject ``<topic>-value``, the default naming): the first records
    then find it cached instead of waiting for the registry. A registry that cannot be
    reached or refuses ends this, and so does ``budget`` seconds spent (startup waits for
    no more); records ask the registry themselves."""
    deadline = time.monotonic() + budget
    for route in routes:
        if not route.needs_registry:
            continue
        if time.monotonic() >= deadline:
            log.info("schemas of later routes not loaded ahead: %.0fs spent", budget)
            return
        subject = f"{route.source}-value"
        try:
            schema_id = registry.preload(subject)
        except RegistryUnavailable as exc:
            log.warning("schemas not loaded ahead: %s", exc)
            return
        if schema_id is not None:
            log.info("%s: value schema %d (latest of %s) loaded", route.source, schema_id, subject)
