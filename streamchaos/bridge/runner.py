"""The consumer→producer bridge: one consumer group member, one hot loop, nothing lost.

Records go to their route's shadow topic (same partition when the shadow has enough),
key, value, headers and timestamp preserved; faults change only the records they select.
Offsets are committed only for what landed (``checkpoint.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from streamchaos.bridge import setup
from streamchaos.bridge.checkpoint import TP, Checkpoint, OffsetTracker
from streamchaos.bridge.control import ASSIGN_GRACE, Control
from streamchaos.bridge.discovery import Discovery, expanded
from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.gc_tuning import fewer_collections
from streamchaos.bridge.guard import Guard
from streamchaos.bridge.health import Health
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.live import LivePlan, restored
from streamchaos.bridge.sentinel import Sentinel
from streamchaos.bridge.setup import RouteState, preload_schemas, registry_of, route_states
from streamchaos.bridge.shared_clock import open_clock
from streamchaos.bridge.status import Status
from streamchaos.bridge.topics import prepare_shadows
from streamchaos.bridge.transactions import checkpoint_of, open_producer
from streamchaos.config import Config
from streamchaos.errors import BridgeError
from streamchaos.kafkaconf import admin_conf, consumer_conf, shadow_admin_conf
from streamchaos.ledger import Ledger
from streamchaos.ledger_topic import flush_all
from streamchaos.logs import named
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)


class Bridge(Control):
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
        super().__init__()
        self.base, self.cfg = cfg, restored(cfg)  # the plan file's plan, if it keeps one
        self.template = self.cfg  # with its pattern routes (``cfg``: made concrete)
        self.keep_ledger, self.tune_gc = keep_ledger, tune_gc
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, self.cfg)
        self.status = Status(self.registry, cfg.bridge.status_interval, now=0.0)
        self.tracker = OffsetTracker()
        self.assigned: set[TP] = set()
        self.ever_assigned: set[TP] = set()
        self.clock: Callable[[], float] = time.monotonic
        self._t0 = 0.0
        self._routes: dict[str, RouteState] = {}
        self._fwd: Forwarder | None = None
        self._consumer: Any = None
        self._producer: Any = None
        self._checkpoint: Checkpoint | None = None
        self.ledger: Ledger | None = None
        self.journal: Journal | None = None
        self.live: LivePlan | None = None  # the plan in force, changed over HTTP
        confs = (shadow_admin_conf(cfg), consumer_conf(cfg) | self.callbacks, admin_conf(cfg))
        self.sentinel = Sentinel(cfg, *confs)
        self.guard: Guard  # what the loop does with the alerts and lags the sentinel found

    def now(self) -> float:
        """Seconds since the experiment started (the schedules' clock)."""
        return self.clock() - self._t0

    @property
    def started_at(self) -> float | None:
        """Wall-clock epoch seconds of the experiment's time 0 (None before ``run``)."""
        return self.journal.epoch if self.journal is not None else None

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
        admin = AdminClient(admin_conf(self.cfg) | self.callbacks)
        fatal = lambda: self._fatal  # noqa: E731 - a client callback's verdict, read later
        self.cfg = cfg = expanded(self.cfg, admin, fatal, self.metrics, self.sentinel)
        other = AdminClient(shadow_admin_conf(cfg) | self.callbacks) if cfg.kafka.shadow else None
        clusters = [c for c in (admin, other) if c is not None]  # /readyz asks each
        self.health = Health(clusters, lambda: len(self.assigned))
        shadows = prepare_shadows(admin, cfg, fatal=fatal, shadow_admin=other)
        registry, clock = registry_of(cfg), setup.clock_of(cfg)
        self._routes = route_states(cfg, shadows, registry, self.metrics, clock)
        if registry is not None:
            preload_schemas(registry, cfg.routes, cfg.schema_registry.timeout)
        self._producer = open_producer(cfg, self.callbacks)
        cfg, scribe = open_clock(cfg, clusters[-1], self._producer, self._commit)  # shadows'
        self.cfg, self._t0 = cfg, self.clock() - setup.started_ago(cfg)  # schedules from t0
        self.ledger = Ledger(
            cfg.experiment, cfg.ledger.path, cfg.ledger.topic, self._producer, keep=self.keep_ledger
        )
        self.journal = Journal(
            cfg, self.ledger, self.metrics, time.time() - self.now(), self._routes, scribe
        )
        self.tracker.on_complete = self.journal.landed
        for state in self._routes.values():
            if state.pipeline is not None:
                self.journal.watch(state.name, state.pipeline)
        fwd = Forwarder(cfg, self._producer, self.tracker, self.journal, self._routes, shadows)
        self._fwd, fwd.on_consume_error = fwd, self._consume_error
        args = (self._routes, self._fwd, self.journal, self._paused.is_set)
        self.live = LivePlan(self.base, cfg, *args)
        self.live.restore_lines(0.0)
        self.guard = Guard(cfg, self.journal, self.metrics, self._fwd, self.pause)
        rest = (registry, self.journal, self._fwd, self.live, self._subscribe, self.sentinel)
        found = Discovery(self.template, (admin, other), *rest, clock)
        self.guard.on_topics = found.found
        self.sentinel.start()
        self._consumer = Consumer(consumer_conf(cfg) | self.callbacks)
        self._fwd.holds.bind(self._consumer)  # it reads the long-hold topics
        duties = (self.tracker, self._consumer, self._producer, self._flush, self.ledger, self._fwd)
        self._checkpoint = checkpoint_of(cfg, *duties)
        self._subscribe([r.source for r in cfg.routes])
        self.serve_control(cfg)

    def _subscribe(self, topics: list[str]) -> None:
        if not topics:  # a pattern that matches nothing yet: nothing to read for now
            return
        callbacks = {"on_revoke": self._on_revoke, "on_lost": self._on_lost}
        topics = topics + list(self._fwd.holds.topics if self._fwd else ())  # long holds
        self._consumer.subscribe(topics, on_assign=self._on_assign, **callbacks)

    def _loop(self, idle_exit: float | None) -> None:
        assert self._fwd is not None and self.journal is not None and self.ledger is not None
        assert self.live is not None
        fwd, journal, send, live = self._fwd, self.journal, self.ledger.send, self.live
        consume, poll = self._consumer.consume, self._producer.poll
        size, timeout = self.cfg.bridge.batch_size, self.cfg.bridge.poll_timeout
        interval = self.cfg.bridge.commit_interval
        last_input = next_commit = self.now()
        paused = False
        while not self._stop.is_set():
            self.beat()
            now = self.now()
            if self._paused.is_set() != paused:
                paused = self._set_paused(not paused, now)
            if live.queue:  # fault changes asked over HTTP, made between batches
                live.serve(now)
            if self.sentinel.found:  # alerts (stop_on, guardrails) and consumer lags
                self.guard.take(self.sentinel.found, now)
            if fwd.pipelines:
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
                self._commit()
                journal.settle()
                journal.all_gauges(fwd.pipelines)
                self.guard.errors(sum(s.failed for s in self._routes.values()), now)
                next_commit = self.now() + interval
            if self.status.due(now):
                log.info("%s", self.status.line(now, paused))
            if not self.ever_assigned:  # a group join is not idleness (up to a minute)
                last_input = max(last_input, min(now, ASSIGN_GRACE))
            if self._idle_over(idle_exit, now - last_input):
                log.info("no input for %.1fs: stopping (--idle-exit)", idle_exit)
                break

    def _set_paused(self, paused: bool, now: float) -> bool:
        assert self._fwd is not None
        self._fwd.pause(paused)
        if paused:
            self._fwd.tick(now)  # episodes end
            released = self._fwd.release(None, now)
            log.warning("paused: all faults off, %d held records released", released)
        else:
            log.warning("resumed: faults back on")
            self.guard.resumed()
        return paused

    def _shutdown(self) -> int:
        """Stop cleanly without losing anything.

        1. stop consuming (the loop has returned);
        2. release every held record and produce it;
        3. flush the producer, so every output is acknowledged or finally failed;
        4. end open fault episodes (their counts are complete now);
        5. commit what landed (``Checkpoint``);
        6. close the consumer (leaves the group; its revoke callback finds nothing left);
        7. close the ledger, stop the HTTP server.
        Exit code 1 when a shadow record or ledger line finally failed, or the flush timed out.
        """
        code = 0
        self.stopping()
        self.sentinel.stop()
        if self.live is not None:
            self.live.close()
        now = self.now()
        if self._fwd is not None:
            released = self._fwd.release(None, now)
            if released:
                log.info("released %d held records", released)
        if self._producer is not None and self._flush():
            log.error("records undelivered after %.0fs", self.cfg.bridge.shutdown_timeout)
            code = 1
        if self._fwd is not None and self.journal is not None:  # counts are complete now
            self.journal.settle()
            for state, pipeline in self._fwd.pipelines:
                self.journal.close_episodes(state.name, pipeline, now)
                self.journal.gauges(state.name, pipeline)
            if self._producer is not None and self.cfg.ledger.topic:
                self._flush()
                self.journal.revoked([])  # marks of the episode lines that landed
        if self._consumer is not None:
            self._commit()
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer close: %s", exc)
        if self.ledger is not None:
            self.ledger.close()
        self.stop_control()
        self.repeats.flush()
        lost = self.ledger.failed if self.ledger is not None else 0
        return self.status.closing(code, self.tracker.failed_outputs, lost)

    def _flush(self) -> int:
        """Flush until nothing is in flight, ledger lines included (``flush_all``)."""
        return flush_all(self._producer, self.ledger, self.cfg.bridge.shutdown_timeout)

    # -- offsets and rebalancing ----------------------------------------------------

    def _commit(self, tps: list[TP] | None = None, land: bool = False) -> None:
        if self._checkpoint is not None:
            self._checkpoint.commit(tps, land)
        if self.journal is not None:
            self.journal.lags(self.tracker)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self.assigned.update(tps)
        self.ever_assigned.update(tps)
        log.info("assigned %s", named(tps))
        if self._fwd is not None and self.journal is not None:  # the event clock's watermark
            self._fwd.assigned(tps, self.now())  # waits for their records
            self.journal.assigned(tps)  # a route's episodes, when written here
        if self.assigned:
            self._assigned_event.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Hand partitions over without loss: 1. release what faults hold for them and
        produce it; 2.–5. commit with everything landed (``Checkpoint``, flushing first);
        6. forget their state (fault instances included)."""
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.info("revoked %s", named(tps))
        if self._fwd is not None:
            self._fwd.release(tps, self.now())
        self._commit(tps, land=self._producer is not None)
        self._forget(tps)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %s (not committed; the new owner re-reads them)", named(tps))
        if self._checkpoint is not None:
            self._checkpoint.lost(tps)
        self._forget(tps, lost=True)

    def _forget(self, tps: list[TP], lost: bool = False) -> None:
        self.tracker.forget(tps)
        self.assigned.difference_update(tps)
        if self._fwd is not None and self.journal is not None:
            self._fwd.forget(tps)
            self.journal.revoked(tps, lost)
