"""The status line and the final summary say what the metrics say."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamchaos.bridge.status import Status
from streamchaos.config import config_from_dict
from streamchaos.metrics import Metrics


def metrics():
    route = {"source": "src", "shadow": "src.shadow", "format": "json"}
    route["faults"] = [
        {"type": "delay", "name": "slow"},
        {"type": "corrupt", "fields": ["amount"]},
    ]
    cfg = config_from_dict({"experiment": "e", "routes": [route]}, env={})
    registry = CollectorRegistry()
    return registry, Metrics(registry, cfg)


def test_a_line_gives_rates_and_new_injections_since_the_last_one():
    registry, m = metrics()
    status = Status(registry, interval=30.0, now=0.0)
    assert not status.due(29.9) and status.due(30.0)
    m.consumed.labels(route="src").inc(3000)
    m.produced.labels(route="src").inc(2970)
    m.injections.labels(experiment="e", route="src", fault="slow", type="delay").inc(12)
    m.held.labels(route="src", fault="slow").set(30)
    m.commit_lag.labels(route="src").set(45)
    assert status.line(30.0, paused=False) == (
        "status: in 100/s, out 99/s, injections +12 (slow=12), held 30, commit lag 45, faults on"
    )
    m.injections.labels(experiment="e", route="src", fault="corrupt", type="corrupt").inc(5)
    assert status.line(60.0, paused=True) == (
        "status: in 0/s, out 0/s, injections +5 (corrupt=5), held 30, commit lag 45, faults paused"
    )


def test_the_summary_has_totals_per_route_and_per_fault():
    registry, m = metrics()
    m.consumed.labels(route="src").inc(100)
    m.produced.labels(route="src").inc(98)
    m.produce_errors.labels(route="src").inc(2)
    m.injections.labels(experiment="e", route="src", fault="slow", type="delay").inc(7)
    assert Status(registry, 0, 0.0).summary() == [
        "route src: consumed=100 produced=98 failed=2",
        "fault corrupt on src: injections=0",
        "fault slow on src: injections=7",
    ]


def test_interval_zero_turns_the_lines_off():
    registry, _ = metrics()
    assert not Status(registry, interval=0, now=0.0).due(1e9)
