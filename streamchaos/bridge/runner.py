"""The consumer→producer bridge: one consumer group member, one hot loop, nothing lost.

Records are passed through as raw bytes to their route's shadow topic, same partition
when the shadow has enough, with key, value, headers and timestamp preserved and a
lineage header added. Offsets are committed only for records the broker acknowledged
(see ``offsets.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from streamchaos.bridge.offsets import TP, Batch, OffsetTracker
from streamchaos.bridge.topics import prepare_shadows
from streamchaos.config import Config, Route
from streamchaos.errors import BridgeError
from streamchaos.httpserver import ControlServer
from streamchaos.kafkaconf import admin_conf, consumer_conf, producer_conf
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)


class RouteState:
    """Per-route constants the hot loop needs, computed once."""

    __slots__ = ("consumed", "failed", "name", "produced", "shadow", "shadow_partitions")

    def __init__(self, route: Route, shadow_partitions: int) -> None:
        self.name = route.source
        self.shadow = route.shadow
        self.shadow_partitions = shadow_partitions
        self.consumed = 0
        self.produced = 0
        self.failed = 0


class _Run:
    """Bookkeeping for a run of consecutive records from one partition within a batch."""

    __slots__ = ("batch", "bridge", "high", "part", "start", "state", "topic")

    def __init__(self, bridge: Bridge, batch: Batch) -> None:
        self.bridge = bridge
        self.batch = batch
        self.topic = ""
        self.part = -1
        self.high = -1
        self.start = 0
        self.state: RouteState | None = None

    def switch(self, topic: str, part: int, offset: int, seen: int) -> tuple[str, int, bytes]:
        """Close the previous run; return (shadow, shadow partition, lineage prefix).

        ``seen`` counts the batch's records before this one.
        """
        self.close(seen)
        state = self.state = self.bridge._routes[topic]
        self.topic, self.part, self.high, self.start = topic, part, offset, seen
        lows = self.batch.lows
        if (topic, part) not in lows:
            lows[(topic, part)] = offset
        shadow_part = part if part < state.shadow_partitions else -1
        return state.shadow, shadow_part, f"{topic}/{part}/".encode()

    def close(self, seen: int) -> None:
        state = self.state
        if state is None:
            return
        self.bridge.tracker.consumed((self.topic, self.part), self.high)
        count = seen - self.start
        by_route = self.batch.outputs_by_route
        by_route[state.name] = by_route.get(state.name, 0) + count
        state.consumed += count
        self.state = None


class Bridge:
    """Run with ``run()`` (blocking); ``stop()`` may be called from any thread or signal."""

    def __init__(self, cfg: Config, *, registry: CollectorRegistry | None = None) -> None:
        self.cfg = cfg
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, cfg)
        self.tracker = OffsetTracker()
        self.tracker.on_complete = self._batch_complete
        self.assigned: set[TP] = set()
        self.ever_assigned: set[TP] = set()
        self._stop = threading.Event()
        self._fatal: str | None = None
        self._routes: dict[str, RouteState] = {}
        self._by_shadow: dict[str, RouteState] = {}
        self._lineage = cfg.bridge.lineage_header
        self._consumer: Any = None
        self._producer: Any = None
        self._server: ControlServer | None = None
        self.clock: Callable[[], float] = time.monotonic

    # -- lifecycle ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    @property
    def metrics_port(self) -> int | None:
        return self._server.port if self._server else None

    def run(self, idle_exit: float | None = None) -> int:
        """Bridge until ``stop()`` or ``idle_exit`` seconds without input; return an exit code."""
        self._open()
        try:
            self._loop(idle_exit)
        finally:
            code = self._shutdown()
        return code

    def _open(self) -> None:
        cfg = self.cfg
        admin = AdminClient(admin_conf(cfg))
        shadows = prepare_shadows(admin, cfg)
        for route in cfg.routes:
            state = RouteState(route, shadows[route.shadow])
            self._routes[route.source] = state
            self._by_shadow[route.shadow] = state
        pconf = producer_conf(cfg)
        pconf["error_cb"] = self._client_error
        self._producer = Producer(pconf)
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
            self._server.start()
            log.info("metrics on http://%s:%d/metrics", cfg.metrics.bind, self._server.port)

    def _loop(self, idle_exit: float | None) -> None:
        consume = self._consumer.consume
        poll = self._producer.poll
        size = self.cfg.bridge.batch_size
        timeout = self.cfg.bridge.poll_timeout
        interval = self.cfg.bridge.commit_interval
        last_input = next_commit = self.clock()
        while not self._stop.is_set():
            msgs = consume(size, timeout)
            now = self.clock()
            if msgs:
                self._forward(msgs)
                last_input = now
            poll(0)
            if self._fatal:
                raise BridgeError(self._fatal)
            if now >= next_commit:
                self._commit(asynchronous=False)
                next_commit = now + interval
            if idle_exit is not None and now - last_input >= idle_exit:
                log.info("no input for %.1fs: stopping (--idle-exit)", idle_exit)
                break

    def _shutdown(self) -> int:
        """Stop cleanly without losing anything.

        1. stop consuming (the loop has returned);
        2. flush the producer, so every output is acknowledged or finally failed;
        3. commit what landed (synchronously);
        4. close the consumer (leaves the group; its revoke callback finds nothing left);
        5. stop the HTTP server.
        Exit code 1 when a delivery finally failed or the flush timed out, else 0.
        """
        code = 0
        if self._producer is not None:
            left = self._producer.flush(self.cfg.bridge.shutdown_timeout)
            if left:
                log.error(
                    "%d records still undelivered after %.0fs",
                    left,
                    self.cfg.bridge.shutdown_timeout,
                )
                code = 1
        if self._consumer is not None:
            self._commit(asynchronous=False)
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer close: %s", exc)
        if self._server is not None:
            self._server.stop()
        if self.tracker.failed_outputs:
            log.error(
                "%d shadow records could not be delivered; their source offsets were not "
                "committed and will be read again on restart",
                self.tracker.failed_outputs,
            )
            code = 1
        self._log_summary()
        return code

    def _log_summary(self) -> None:
        for state in self._routes.values():
            log.info(
                "route %s: consumed=%d produced=%d failed=%d",
                state.name,
                state.consumed,
                state.produced,
                state.failed,
            )

    # -- the hot path ---------------------------------------------------------------

    def _forward(self, msgs: list[Any]) -> None:
        """Produce each consumed record to its shadow; one ``Batch`` tracks their acks.

        The loop is the bridge's hot path (~2 µs a record): per-partition constants are
        looked up once per run of records from the same partition, counters are locals.
        """
        batch = self.tracker.new_batch()
        produce = self._producer.produce
        on_delivery = batch.on_delivery
        lineage = self._lineage
        run = _Run(self, batch)
        shadow, shadow_part, prefix = "", -1, b""
        outputs = 0
        for msg in msgs:
            if msg.error() is not None:
                self._consume_error(msg.error())
                continue
            part = msg.partition()
            topic = msg.topic()
            offset = msg.offset()
            if part != run.part or topic != run.topic:
                shadow, shadow_part, prefix = run.switch(topic, part, offset, outputs)
            run.high = offset
            headers = msg.headers()
            if lineage is not None:
                origin = (lineage, prefix + b"%d" % offset)
                headers = [*headers, origin] if headers else [origin]
            ts_type, ts = msg.timestamp()
            outputs += 1
            try:
                produce(  # positional: (topic, value, key, partition, callback, -, ts, headers)
                    shadow,
                    msg.value(),
                    msg.key(),
                    shadow_part,
                    on_delivery,
                    None,
                    ts if ts_type else 0,
                    headers,
                )
            except BufferError:
                self._produce_when_room(
                    shadow, msg, shadow_part, on_delivery, None, ts if ts_type else 0, headers
                )
        run.close(outputs)
        batch.remaining += outputs
        batch.outputs = outputs
        for name, count in batch.outputs_by_route.items():
            self.metrics.consumed.labels(route=name).inc(count)
        batch.seal()

    def _produce_when_room(self, shadow: str, msg: Any, *args: Any) -> None:
        """The local queue is full: serve delivery reports until there is room."""
        while True:
            self._producer.poll(0.05)
            try:
                self._producer.produce(shadow, msg.value(), msg.key(), *args)
                return
            except BufferError:
                continue

    def _batch_complete(self, batch: Batch) -> None:
        """Count what landed per route; log and count what finally failed."""
        failed: dict[str, int] = {}
        for err, msg in batch.failures:
            state = self._by_shadow.get(msg.topic())
            name = state.name if state is not None else msg.topic()
            failed[name] = failed.get(name, 0) + 1
            log.error(
                "delivery to %s[%s] failed finally (%s); its source offset will not be committed",
                msg.topic(),
                msg.partition(),
                err,
            )
        for name, outputs in batch.outputs_by_route.items():
            state = self._routes[name]
            ok = outputs - failed.get(name, 0)
            state.produced += ok
            self.metrics.produced.labels(route=name).inc(ok)
        for name, count in failed.items():
            if name in self._routes:
                self._routes[name].failed += count
                self.metrics.produce_errors.labels(route=name).inc(count)

    # -- offsets and rebalancing ----------------------------------------------------

    def _commit(self, *, asynchronous: bool, tps: list[TP] | None = None) -> None:
        points = self.tracker.to_commit(tps)
        if points:
            offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
            try:
                self._consumer.commit(offsets=offsets, asynchronous=asynchronous)
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

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Hand partitions over without loss.

        1. flush the producer so every output of these partitions is acknowledged;
        2. commit their commit points synchronously;
        3. forget their state.
        """
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.info("revoked %s", _fmt(tps))
        if self._producer is not None:
            self._producer.flush(self.cfg.bridge.shutdown_timeout)
        self._commit(asynchronous=False, tps=tps)
        self.tracker.forget(tps)
        self.assigned.difference_update(tps)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %s (not committed; the new owner re-reads them)", _fmt(tps))
        self.tracker.forget(tps)
        self.assigned.difference_update(tps)

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
