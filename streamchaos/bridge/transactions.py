"""``delivery: exactly-once``: one Kafka transaction per commit interval (KIP-98, KIP-447).

The bridge's producer is transactional. What it produces between two commits (shadow
records, ledger-topic lines) and the source offsets those records came from commit
together, the offsets through ``send_offsets_to_transaction`` with the consumer's group
metadata, so a member whose partitions moved on is fenced rather than committing them.
A ``read_committed`` consumer of a shadow sees every source record's outputs exactly
once, whatever crashed or rebalanced. ``Transactions.commit`` takes these steps:

1. land: flush the producer until nothing is in flight, ledger-topic lines included;
2. work out the commit points (as at-least-once does: behind in-flight and failed
   records);
3. send them to the transaction and commit it;
4. append the transaction's ledger-file lines (``Ledger.defer``);
5. begin the next transaction.

A transaction that cannot commit (a record refused, the group moved on) is aborted and
the bridge stops with an error: a restart reads again from the last commit, so nothing of
the aborted transaction is lost or repeated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaException, Producer, TopicPartition

from streamchaos.bridge.checkpoint import TP, Checkpoint, OffsetTracker
from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.replay import MAX_METADATA, Progress
from streamchaos.config import Config
from streamchaos.errors import BridgeError
from streamchaos.kafkaconf import producer_conf
from streamchaos.ledger import Ledger
from streamchaos.logs import named

log = logging.getLogger(__name__)


def open_producer(cfg: Config, callbacks: dict[str, Any]) -> Any:
    """The bridge's producer; under exactly-once, transactional with one transaction
    begun (a restarted member's first call fences its crashed self and aborts what that
    one left open)."""
    producer = Producer(producer_conf(cfg) | callbacks)
    if cfg.delivery == "exactly-once":
        producer.init_transactions(cfg.bridge.shutdown_timeout)
        producer.begin_transaction()
    return producer


def checkpoint_of(
    cfg: Config,
    tracker: OffsetTracker,
    consumer: Any,
    producer: Any,
    flush: Callable[[], int],
    ledger: Ledger,
    fwd: Forwarder,
) -> Checkpoint:
    """The commit sequence of the experiment's delivery."""
    if cfg.delivery == "exactly-once":
        timeout = cfg.bridge.shutdown_timeout
        return Transactions(tracker, consumer, producer, flush, ledger, fwd, timeout)
    return Checkpoint(tracker, consumer, lambda: producer.poll(0), flush, ledger.flush)


class Transactions(Checkpoint):
    """The commit sequence under exactly-once: every partition commits together."""

    def __init__(
        self,
        tracker: OffsetTracker,
        consumer: Any,
        producer: Any,
        flush: Callable[[], int],
        ledger: Ledger,
        fwd: Forwarder,
        timeout: float,
    ) -> None:
        super().__init__(tracker, consumer, lambda: producer.poll(0), flush, ledger.flush)
        self.producer, self.ledger, self.fwd, self.timeout = producer, ledger, fwd, timeout
        self.broken = False  # aborted: nothing commits any more, the bridge stops
        # the forwarder keeps what each record wrote, and reads what commits say of it
        self.progress = fwd.progress = Progress()
        fwd.committed = self._committed
        ledger.defer()

    def _committed(self, tps: list[TP]) -> dict[TP, tuple[int, str | None]]:
        """The committed offset and metadata of each of ``tps`` that has one."""
        asked = [TopicPartition(t, p) for t, p in tps]
        found = self.consumer.committed(asked, timeout=self.timeout)
        for tp in found:
            if tp.error is not None:  # reading on without it would write what is done again
                raise BridgeError(f"{tp.topic}[{tp.partition}]: no committed offset: {tp.error}")
        return {
            (tp.topic, tp.partition): (tp.offset, tp.metadata) for tp in found if tp.offset >= 0
        }

    def commit(self, tps: Iterable[TP] | None = None, land: bool = False) -> dict[TP, int]:
        """Commit the open transaction with every partition's commit point (``tps`` and
        ``land`` are moot: a transaction holds all, and always lands first)."""
        if self.broken:
            return {}
        try:
            if self._flush():
                raise BridgeError(f"records still in flight after {self.timeout:g}s")
            if self.tracker.failed_outputs:  # a record refused: not done, so no commit
                raise BridgeError("a record of it was refused or not delivered")
            points, offsets = self._offsets()
            if offsets:
                metadata = self.consumer.consumer_group_metadata()
                self.producer.send_offsets_to_transaction(offsets, metadata, self.timeout)
            self._commit_transaction()
        except (KafkaException, BridgeError) as exc:
            self._abort(str(exc.args[0]))
        self.ledger.commit_lines()
        self.tracker.committed(points)
        self.producer.begin_transaction()
        return points

    def _commit_transaction(self) -> None:
        """Commit, again after a retriable error (librdkafka takes nothing else until the
        commit is done) until the timeout is spent."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.producer.commit_transaction(max(0.0, deadline - time.monotonic()))
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not err.retriable() or err.txn_requires_abort() or time.monotonic() > deadline:
                    raise
                log.warning("transaction commit failed, retrying: %s", err)

    def _offsets(self) -> tuple[dict[TP, int], list[TopicPartition]]:
        """Each partition's commit point, with what it leaves undone as metadata. Where
        that would not fit, the partition's held records are released (marked so in the
        ledger) and produced first, so its point moves up to them."""
        points, offsets, full = {}, [], []
        for tp, end in self.tracker.reads().items():
            point = self.tracker.commit_point(tp)
            if point is None:
                continue
            text = self.progress.metadata(tp, point, end, self._held(tp))
            if len(text) > MAX_METADATA:
                full.append(tp)
            points[tp] = point
            offsets.append(TopicPartition(tp[0], tp[1], point, text))
        if not full:
            return points, offsets
        log.warning("releasing what %s hold: the commit could not say it", named(full))
        self.fwd.release(full, time.time() - self.fwd.journal.epoch)  # the bridge's clock
        if self._flush():
            raise BridgeError(f"records still in flight after {self.timeout:g}s")
        return self._offsets()

    def _held(self, tp: TP) -> list[int]:
        state = self.fwd.routes.get(tp[0])
        pipeline = state.pipeline if state is not None else None
        return pipeline.held_offsets(tp[1]) if pipeline is not None else []

    def lost(self, tps: list[TP]) -> None:
        """Partitions taken away without a revocation: the open transaction holds their
        records, which their new owner reads again, so it must not commit."""
        self._abort(f"partitions lost: {named(tps)}")

    def _abort(self, why: str) -> None:
        """Abort the open transaction and stop: nothing of it is visible to a
        ``read_committed`` consumer, and a restart reads it again. A transaction is begun
        again for what the shutdown writes; it never commits."""
        self.ledger.discard_lines()
        self.broken = True
        try:
            self.producer.abort_transaction(self.timeout)
            self.producer.begin_transaction()
        except KafkaException as exc:  # fenced or fatal: the broker aborts it by timeout
            log.error("transaction abort failed: %s", exc.args[0])
        raise BridgeError(
            f"exactly-once: the transaction could not commit ({why}); it was aborted, and "
            "a restart reads its records again from the last commit"
        )
