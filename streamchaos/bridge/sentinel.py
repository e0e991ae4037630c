"""What the bridge looks at besides its records, in a thread of its own: detector alerts
(Prometheus's ``ALERTS`` or an alerts topic), the lag of consumer groups on the shadows,
the records waiting in long-hold topics, and the source cluster's topics (for pattern
routes). Nothing here touches the fault
pipelines: what it finds waits in ``found`` for the loop (``guard.py``), as live changes
do.

An alert is its rising edge: the first sample of a firing series, found in the same
``query_range`` answer ``streamchaos score --prometheus`` reads, so the bridge and the
scorer agree on when an alert fired.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka.admin
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from streamchaos.config import Config
from streamchaos.config.holds import hold_topics
from streamchaos.config.watching import ConsumerLag
from streamchaos.errors import StreamChaosError
from streamchaos.evaluation.alerts import Alert, alert_from_dict, firing_series
from streamchaos.evaluation.scorer import alerts_range
from streamchaos.hold_record import hold_topic
from streamchaos.logs import Repeats

log = logging.getLogger(__name__)

OffsetSpec: Any = getattr(confluent_kafka.admin, "OffsetSpec")  # noqa: B009 (not re-exported in its types)
TIMEOUT = 10.0  # seconds one look at Prometheus or the broker may take


@dataclass(frozen=True)
class Topics:
    """Every topic of the source cluster now (pattern routes take new matches)."""

    names: frozenset[str]


@dataclass(frozen=True)
class Lag:
    """Records a consumer group is behind the shadows' ends (its committed partitions)."""

    group: str
    records: int


@dataclass(frozen=True)
class Waiting:
    """Records waiting in a route's long-hold topic (past the group's committed offsets)."""

    route: str
    records: int


Finding = Alert | Lag | Topics | Waiting


class FiringEdges:
    """Rising edges of firing series seen in overlapping windows: a series sampled again
    within 1.5 steps is the same alert, as ``alerts_from_prometheus`` counts them. The
    first look only learns what is firing already (it is no news)."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.last: dict[tuple[tuple[str, str], ...], float] = {}
        self.primed = False

    def feed(self, series: list[tuple[dict[str, str], list[float]]]) -> list[Alert]:
        out = []
        for labels, times in series:
            key = tuple(sorted(labels.items()))
            prev = self.last.get(key)
            for t in times:
                if prev is not None and t <= prev:
                    continue
                if self.primed and (prev is None or t - prev > 1.5 * self.step):
                    out.append(Alert(t, dict(labels)))
                prev = t
            if prev is not None:
                self.last[key] = prev
        self.primed = True
        return sorted(out, key=lambda a: a.at)


class Sentinel:
    """Looks every ``alerts.interval`` (alerts) and every 5 intervals (lags)."""

    def __init__(
        self,
        cfg: Config,
        shadow_admin: dict[str, Any],
        source: dict[str, Any],
        admin: dict[str, Any],
    ) -> None:
        """``shadow_admin``, ``source``, ``admin``: client settings for the shadow cluster
        (lags), the source cluster's consumers (the alerts topic) and its admin (topics for
        pattern routes); the clients are made by ``start``."""
        self.cfg, self._confs = cfg, (shadow_admin, source, admin)
        self.found: deque[Finding] = deque()
        self.interval = cfg.alerts.interval
        self.edges = FiringEdges(self.interval)
        self.repeats = Repeats(log)
        self._lags = [g for g in cfg.guardrails if isinstance(g, ConsumerLag)]
        self.shadows = [r.shadow for r in cfg.routes if not r.is_pattern]  # lags: of these
        held = hold_topics(cfg)
        suffix = cfg.safety.shadow_suffix
        self.holds = {  # route -> its long-hold topic: how many records wait there
            r.source: t for r in cfg.routes if (t := hold_topic(r.shadow, suffix)) in held
        }
        self._admin: Any = None
        self._source_admin: Any = None
        self._consumer: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamchaos-sentinel", daemon=True)

    @property
    def needed(self) -> bool:
        needs = self.cfg.alerts.enabled or bool(self._lags) or bool(self.holds)
        return needs or self.cfg.has_patterns

    def start(self) -> None:
        """Make the clients it needs and start looking (nothing to do: no thread)."""
        if not self.needed:
            return
        shadow_admin, source, admin = self._confs
        if self._lags or self.holds:
            self._admin = AdminClient(shadow_admin)
        if self.cfg.has_patterns:
            self._source_admin = AdminClient(admin)
        if self.cfg.alerts.topic:
            group = f"streamchaos.{self.cfg.experiment}.alerts.{time.time_ns()}"
            conf = {**source, "group.id": group, "auto.offset.reset": "latest"}
            conf |= {"enable.auto.commit": False, "error_cb": self._client_error}
            self._consumer = Consumer(conf)
            self._consumer.subscribe([self.cfg.alerts.topic])
        self._thread.start()

    def _client_error(self, err: Any) -> None:
        """The alerts consumer's own: an error reading alerts must not stop the bridge."""
        self.repeats.warning("alerts consumer", f"alerts topic consumer: {err.str()}")

    def stop(self) -> None:
        """Ask the thread to end; it closes its consumer itself, within a look."""
        self._stop.set()

    def _run(self) -> None:
        since, turn = time.time() - 2 * self.interval, 0
        try:
            while not self._stop.is_set():
                now = time.time()
                if self.cfg.alerts.prometheus is not None:
                    self._look("Prometheus alerts", self._prometheus, since, now)
                since = now - 2 * self.interval  # overlapping windows: late samples are seen
                if self._consumer is not None:
                    self._look("the alerts topic", self._topic)
                if turn % 5 == 0:
                    for rail in self._lags:
                        self._look(f"the lag of {rail.group}", self._lag, rail)
                    for route, topic in self.holds.items():
                        self._look(f"what waits in {topic}", self._waiting, route, topic)
                if self._source_admin is not None and turn % self._refresh_turns == 0:
                    self._look("the topics", self._topics)
                turn += 1
                self.repeats.tick()
                self._stop.wait(max(0.0, self.interval - (time.time() - now)))
        finally:
            if self._consumer is not None:
                self._consumer.close()

    def _look(self, what: str, look: Callable[..., None], *args: Any) -> None:
        """One look; whatever goes wrong is logged (once per 30 s) and the next one comes:
        the sentinel never dies of a bad answer."""
        try:
            look(*args)
        except Exception as exc:  # a bad answer or a network error, never the end
            self.repeats.warning(what, f"cannot read {what}: {type(exc).__name__}: {exc}")

    def _prometheus(self, since: float, now: float) -> None:
        """Alerts that started firing in [since, now] (``ALERTS`` in Prometheus)."""
        url = str(self.cfg.alerts.prometheus)
        body = alerts_range(url, since, now, self.interval, TIMEOUT)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            error = body.get("error", "no data") if isinstance(body, dict) else "not an object"
            raise StreamChaosError(f"Prometheus answered without data: {error}")
        self.found.extend(self.edges.feed(firing_series(body["data"])))

    def _topic(self) -> None:
        """Alerts that arrived on the alerts topic; a bad record is skipped and logged.
        Those labelled ``source="streamchaos"`` are ground truth, as in ``score``."""
        for msg in self._consumer.consume(500, 0.05):
            if msg.error() is not None:
                self.repeats.warning("alerts topic", f"alerts topic: {msg.error()}")
                continue
            try:
                alert = alert_from_dict(json.loads(msg.value() or b"null"))
            except ValueError as exc:  # one bad record: skipped, the others count
                where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
                self.repeats.warning("bad alert", f"alerts topic: {where} skipped: {exc}")
                continue
            if alert.labels.get("source") != "streamchaos":
                self.found.append(alert)

    @property
    def _refresh_turns(self) -> int:
        return max(1, round(self.cfg.bridge.topic_refresh / self.interval))

    def _topics(self) -> None:
        meta = self._source_admin.list_topics(timeout=TIMEOUT)
        self.found.append(Topics(frozenset(meta.topics)))

    def _lag(self, rail: ConsumerLag) -> None:
        records = consumer_lag(self._admin, rail.group, self.shadows)
        if records is not None:
            self.found.append(Lag(rail.group, records))

    def _waiting(self, route: str, topic: str) -> None:
        self.found.append(Waiting(route, waiting_in(self._admin, self.cfg.group_id, topic)))


def waiting_in(admin: Any, group: str, topic: str) -> int:
    """Records of ``topic`` past ``group``'s committed offsets (from a partition's start
    where it has committed none)."""
    parts = admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in parts]
    request = [ConsumerGroupTopicPartitions(group, tps)]
    answer = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group]
    committed = {tp.partition: tp.offset for tp in answer.result(TIMEOUT).topic_partitions or []}

    def offsets(spec: Any) -> dict[int, int]:
        futures = admin.list_offsets({tp: spec for tp in tps}, request_timeout=TIMEOUT)
        return {tp.partition: future.result(TIMEOUT).offset for tp, future in futures.items()}

    low, high = offsets(OffsetSpec.earliest()), offsets(OffsetSpec.latest())
    return sum(max(0, high[p] - max(low[p], committed.get(p, -1))) for p in high)


def consumer_lag(admin: Any, group: str, topics: list[str]) -> int | None:
    """How far ``group`` is behind the ends of ``topics``, over the partitions it has
    committed (None: it has committed none, so there is no lag to speak of)."""
    request = [ConsumerGroupTopicPartitions(group)]
    answer = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group]
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.result(TIMEOUT).topic_partitions or []
        if tp.topic in topics and tp.offset >= 0
    }
    if not committed:
        return None
    latest = OffsetSpec.latest()
    ends = admin.list_offsets(
        {TopicPartition(t, p): latest for t, p in committed}, request_timeout=TIMEOUT
    )
    return int(
        sum(
            max(0, future.result(TIMEOUT).offset - committed[(tp.topic, tp.partition)])
            for tp, future in ends.items()
        )
    )
