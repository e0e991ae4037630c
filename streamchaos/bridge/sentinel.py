"""What the bridge looks at besides its records, in a thread of its own: detector alerts
(Prometheus's ``ALERTS`` or an alerts topic) and the lag of consumer groups on the
shadows. Nothing here touches the fault pipelines: what it finds waits in ``found`` for
the loop (``guard.py``), as live changes do.

An alert is its rising edge: the first sample of a firing series, found in the same
``query_range`` answer ``streamchaos score --prometheus`` reads, so the bridge and the
scorer agree on when an alert fired.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka.admin
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streamchaos.config import Config
from streamchaos.config.watching import ConsumerLag
from streamchaos.errors import StreamChaosError
from streamchaos.evaluation.alerts import Alert, alert_from_dict, firing_series
from streamchaos.evaluation.scorer import QUERY
from streamchaos.logs import Repeats

log = logging.getLogger(__name__)

OffsetSpec: Any = getattr(confluent_kafka.admin, "OffsetSpec")  # noqa: B009 (not re-exported in its types)
TIMEOUT = 10.0  # seconds one look at Prometheus or the broker may take


@dataclass(frozen=True)
class Lag:
    """Records a consumer group is behind the shadows' ends (its committed partitions)."""

    group: str
    records: int


Finding = Alert | Lag


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

    def __init__(self, cfg: Config, shadow_admin: dict[str, Any], source: dict[str, Any]) -> None:
        self.cfg = cfg
        self.found: deque[Finding] = deque()
        self.interval = cfg.alerts.interval
        self.edges = FiringEdges(self.interval)
        self.repeats = Repeats(log)
        self._lags = [g for g in cfg.guardrails if isinstance(g, ConsumerLag)]
        self._shadows = [r.shadow for r in cfg.routes]
        self._admin = AdminClient(shadow_admin) if self._lags else None
        self._consumer: Any = None
        if cfg.alerts.topic:
            conf = {**source, "group.id": f"streamchaos.{cfg.experiment}.alerts.{time.time_ns()}"}
            conf |= {"auto.offset.reset": "latest", "enable.auto.commit": False}
            self._consumer = Consumer(conf)
            self._consumer.subscribe([cfg.alerts.topic])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamchaos-sentinel", daemon=True)

    @property
    def needed(self) -> bool:
        return self.cfg.alerts.enabled or bool(self._lags)

    def start(self) -> None:
        if self.needed:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(TIMEOUT + self.interval)
        if self._consumer is not None:
            self._consumer.close()

    def _run(self) -> None:
        since, turn = time.time() - 2 * self.interval, 0
        while not self._stop.is_set():
            now = time.time()
            self._look("alerts", self._alerts, since, now)
            since = now - 2 * self.interval  # overlapping windows: late samples are seen
            if turn % 5 == 0:
                for rail in self._lags:
                    self._look(f"lag {rail.group}", self._lag, rail)
            turn += 1
            self.repeats.tick()
            self._stop.wait(max(0.0, self.interval - (time.time() - now)))

    def _look(self, what: str, look: Callable[..., None], *args: Any) -> None:
        try:
            look(*args)
        except (StreamChaosError, KafkaException, OSError, ValueError) as exc:
            self.repeats.warning(what, f"cannot read {what}: {exc}")

    def _alerts(self, since: float, now: float) -> None:
        self.found.extend(self.alerts(since, now))

    def alerts(self, since: float, now: float) -> list[Alert]:
        """Alerts that started firing since the last look."""
        out: list[Alert] = []
        url = self.cfg.alerts.prometheus
        if url is not None:
            query = {"query": QUERY, "start": since, "end": now, "step": self.interval}
            full = f"{url.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(query)}"
            with urllib.request.urlopen(full, timeout=TIMEOUT) as resp:
                body = json.load(resp)
            if body.get("status") == "error":
                raise StreamChaosError(f"Prometheus: {body.get('error', 'query failed')}")
            out += self.edges.feed(firing_series(body.get("data", {})))
        if self._consumer is not None:
            for msg in self._consumer.consume(500, 0.05):
                if msg.error() is not None:
                    continue
                try:
                    out.append(alert_from_dict(json.loads(msg.value() or b"null")))
                except ValueError as exc:  # one bad record: skipped, the others count
                    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
                    self.repeats.warning("bad alert", f"alerts topic: {where} skipped: {exc}")
        return out

    def _lag(self, rail: ConsumerLag) -> None:
        records = consumer_lag(self._admin, rail.group, self._shadows)
        if records is not None:
            self.found.append(Lag(rail.group, records))


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
