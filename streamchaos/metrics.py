"""Every Prometheus collector the bridge exports, in one place (the reference detector's
own are in ``evaluation/watch_runner.py``).

Metric names are part of the public contract (the README's metrics table). Collectors take
a registry so tests can pass a fresh ``CollectorRegistry`` and read values with
``registry.get_sample_value``. Label sets are created at startup so series read 0, not absent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamchaos.config import Config, Route
from streamchaos.faults.config import FaultConfig


class Metrics:
    def __init__(self, registry: CollectorRegistry, cfg: Config) -> None:
        self.consumed = Counter(
            "streamchaos_records_consumed",
            "Records read from a route's source topic.",
            ["route"],
            registry=registry,
        )
        self.produced = Counter(
            "streamchaos_records_produced",
            "Records acknowledged by the broker on a route's shadow topic.",
            ["route"],
            registry=registry,
        )
        self.produce_errors = Counter(
            "streamchaos_produce_errors",
            "Shadow records whose delivery finally failed (their source offsets are never "
            "committed).",
            ["route"],
            registry=registry,
        )
        self.commit_lag = Gauge(
            "streamchaos_commit_lag_records",
            "Consumed records of a route not yet covered by a committed offset.",
            ["route"],
            registry=registry,
        )
        self.injections = Counter(
            "streamchaos_injections",
            "Faults applied to records (one per ledger injection entry).",
            ["experiment", "route", "fault", "type"],
            registry=registry,
        )
        self.fault_active = Gauge(
            "streamchaos_fault_active",
            "1 while the fault's schedule is active (and not paused), else 0.",
            ["experiment", "route", "fault"],
            registry=registry,
        )
        self.fault_intensity = Gauge(
            "streamchaos_fault_intensity",
            "Schedule intensity 0..1 (selection probability = fraction x intensity).",
            ["experiment", "route", "fault"],
            registry=registry,
        )
        self.held = Gauge(
            "streamchaos_held_records",
            "Records a holding fault keeps in memory right now.",
            ["route", "fault"],
            registry=registry,
        )
        self.long_held = Gauge(
            "streamchaos_long_held_records",
            "Records waiting in a route's long-hold topic (bridge.hold_horizon): the group's "
            "lag on it, looked at every 5 alerts.interval.",
            ["route"],
            registry=registry,
        )
        self.undecodable = Counter(
            "streamchaos_undecodable",
            "Records passed through unchanged because they could not be decoded.",
            ["route", "reason"],
            registry=registry,
        )
        self.fault_errors = Counter(
            "streamchaos_fault_errors",
            "Selected records a fault could not change (unknown field, wrong type, no older "
            "schema version); they pass through unchanged.",
            ["route", "fault", "reason"],
            registry=registry,
        )
        self.join_misses = Counter(
            "streamchaos_join_misses",
            "Selected records a joining fault (feedback) found no joined record for (not "
            "consumed yet, pushed out of the table, or outside the window); they pass.",
            ["route", "fault"],
            registry=registry,
        )
        self.join_keys = Gauge(
            "streamchaos_join_keys",
            "Keys a joining fault's table holds (bounded by its join's max_keys).",
            ["route", "fault"],
            registry=registry,
        )
        self.join_evictions = Counter(
            "streamchaos_join_evictions",
            "Keys pushed out of a joining fault's table by its max_keys (a later label of "
            "such a key misses).",
            ["route", "fault"],
            registry=registry,
        )
        self.detection_delay = Histogram(
            "streamchaos_detection_delay_seconds",
            "Seconds from a fault episode's start to the stop_on alert that ended it.",
            ["experiment", "route", "fault"],
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
        self.guardrail_tripped = Gauge(
            "streamchaos_guardrail_tripped",
            "1 from the moment a guardrail paused the experiment until it is resumed.",
            ["guardrail"],
            registry=registry,
        )
        for route in (r for r in cfg.routes if not r.is_pattern):  # patterns: when matched
            self.route_series(cfg.experiment, route)

    def route_series(self, experiment: str, route: Route) -> None:
        """A route's series and its faults', at 0 (at startup, or when a pattern route
        matched a new topic)."""
        for metric in (self.consumed, self.produced, self.produce_errors, self.commit_lag):
            metric.labels(route=route.source)
        for fault in route.faults:
            self.fault_series(experiment, route.source, fault)

    def fault_series(self, experiment: str, route: str, fault: FaultConfig) -> None:
        """A fault's series, at 0 (at startup, or when it is added to a running bridge)."""
        f = {"experiment": experiment, "route": route, "fault": fault.label}
        self.injections.labels(type=fault.type, **f)
        self.fault_active.labels(**f)
        self.fault_intensity.labels(**f)
        self.held.labels(route=route, fault=fault.label)
