"""The Kafka side of ``streamchaos watch``: read a topic, feed the detector, export
Prometheus gauges, write alerts to JSON Lines and/or a topic."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry, Counter, Gauge

from streamchaos.codec import AvroCodec, JsonCodec, Registry, Undecodable
from streamchaos.evaluation.watch import Detector, WatchSettings
from streamchaos.httpserver import ControlServer
from streamchaos.kafkatools import unique_name

log = logging.getLogger(__name__)

GAUGES = {
    "ks_pvalue": "KS test p-value of the feature's window against its reference.",
    "null_rate": "Share of null, missing or non-finite values in the window.",
    "unseen_rate": "Share of categories never seen in the reference window.",
    "undecodable_rate": "Share of records that could not be decoded.",
    "lateness_p90_seconds": "90th percentile of (now - record timestamp).",
}


@dataclass
class WatchOptions:
    bootstrap: str
    topic: str
    registry_url: str | None = None
    format: str = "avro"
    group: str | None = None
    alerts_path: Path | None = None
    alerts_topic: str | None = None
    metrics_bind: str = "127.0.0.1"
    metrics_port: int | None = None
    duration: float | None = None
    idle_exit: float | None = None


class WatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.gauges = {
            key: Gauge(f"streamchaos_watch_{key}", doc, ["topic", "feature"], registry=registry)
            for key, doc in GAUGES.items()
        }
        self.alerting = Gauge(
            "streamchaos_watch_alerting",
            "1 while a check is bad.",
            ["topic", "alert", "feature"],
            registry=registry,
        )
        self.records = Counter(
            "streamchaos_watch_records", "Records watched.", ["topic"], registry=registry
        )
        self.alerts = Counter(
            "streamchaos_watch_alerts",
            "Alerts raised.",
            ["topic", "alert", "feature"],
            registry=registry,
        )

    def publish(self, topic: str, gauges: dict[tuple[str, str], float]) -> None:
        for (key, name), value in gauges.items():
            if key == "alerting":
                alert, feature = name.split(":", 1)
                self.alerting.labels(topic=topic, alert=alert, feature=feature).set(value)
            else:
                self.gauges[key].labels(topic=topic, feature=name).set(value)


class Watcher:
    def __init__(
        self,
        opts: WatchOptions,
        settings: WatchSettings | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.opts = opts
        self.detector = Detector(settings)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = WatchMetrics(self.registry)
        self.alerts_raised = 0
        self._records = self.metrics.records.labels(topic=opts.topic)
        self._stop = threading.Event()
        self.server: ControlServer | None = None
        sr = Registry(opts.registry_url) if opts.registry_url else None
        self.codec = AvroCodec(sr) if opts.format == "avro" else JsonCodec()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        opts = self.opts
        consumer = Consumer(
            {
                "bootstrap.servers": opts.bootstrap,
                "group.id": opts.group or unique_name("watch"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "fetch.queue.backoff.ms": 20,
            }
        )
        producer = Producer({"bootstrap.servers": opts.bootstrap}) if opts.alerts_topic else None
        sink = opts.alerts_path.open("a", encoding="utf-8") if opts.alerts_path else None
        if opts.metrics_port is not None:
            self.server = ControlServer(self.registry, opts.metrics_bind, opts.metrics_port)
            self.server.start()
            log.info("watch metrics on http://%s:%d/metrics", opts.metrics_bind, self.server.port)
        consumer.subscribe([opts.topic])
        try:
            self._loop(consumer, producer, sink)
        finally:
            consumer.close()
            if producer is not None:
                producer.flush(10)
            if sink is not None:
                sink.close()
            if self.server is not None:
                self.server.stop()
        log.info(
            "watched %d records of %s, %d alerts",
            self.detector.records,
            opts.topic,
            self.alerts_raised,
        )
        return 0

    def _loop(self, consumer: Any, producer: Any, sink: Any) -> None:
        start = last = time.monotonic()
        opts = self.opts
        while not self._stop.is_set():
            now = time.monotonic()
            if opts.duration is not None and now - start >= opts.duration:
                break
            if opts.idle_exit is not None and now - last >= opts.idle_exit:
                break
            msgs = consumer.consume(500, 0.2)
            if msgs:
                last = now
            for msg in msgs:
                if msg.error() is None:
                    self._record(msg, producer, sink)
            self.metrics.publish(opts.topic, self.detector.gauges)

    def _record(self, msg: Any, producer: Any, sink: Any) -> None:
        try:
            dec = self.codec.decode(msg.value())
            value = dec.value if isinstance(dec.value, dict) else None
            if not self.detector.fields and dec.schema is not None:
                self.detector.configure(dec.schema.raw)
            elif not self.detector.fields and value is not None:
                self.detector.configure(
                    {"fields": [{"name": k, "type": _json_type(v)} for k, v in value.items()]}
                )
        except Undecodable:
            value = None
        ts_type, ts = msg.timestamp()
        wall = time.time()
        lateness = max(0.0, wall - ts / 1000) if ts_type and ts > 0 else 0.0
        self._records.inc()
        for alert in self.detector.observe(value, lateness, wall):
            self._raise(alert, producer, sink)

    def _raise(self, alert: dict[str, Any], producer: Any, sink: Any) -> None:
        alert["labels"]["topic"] = self.opts.topic
        self.alerts_raised += 1
        labels = alert["labels"]
        self.metrics.alerts.labels(
            topic=self.opts.topic, alert=labels["alertname"], feature=labels.get("feature", "")
        ).inc()
        log.warning(
            "ALERT %s %s (value %.3g) after %d records",
            labels["alertname"],
            labels.get("feature", ""),
            alert["value"],
            alert["records"],
        )
        line = json.dumps(alert)
        if sink is not None:
            sink.write(line + "\n")
            sink.flush()
        if producer is not None:
            producer.produce(self.opts.alerts_topic, line.encode())
            producer.poll(0)


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "double"
    return "string"
