"""Stop on detection and guardrails, loop side: which alert stops which episode, and when
a guardrail pauses the experiment (pure logic; the real Prometheus and broker are in the
integration tests)."""

from __future__ import annotations

import json
from collections import deque

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge.checkpoint import OffsetTracker
from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.guard import Guard
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.sentinel import FiringEdges, Lag
from streamchaos.bridge.setup import RouteState
from streamchaos.config import config_from_dict
from streamchaos.config.plan import added, parse_fault
from streamchaos.errors import ConfigError
from streamchaos.evaluation.alerts import Alert
from streamchaos.evaluation.episodes import episodes_from_ledger
from streamchaos.ledger import Ledger
from streamchaos.ledger_read import _entries
from streamchaos.metrics import Metrics
from tests.fakes import Producer

EPOCH = 1_000_000.0  # the experiment's time 0, epoch seconds
DELAY = {"type": "delay", "name": "slow", "fraction": 0.5, "delay": "1s"}


def guarded(faults=(), guardrails=(), alerts=True):
    raw = {
        "experiment": "x",
        "routes": [{"source": "src", "shadow": "src.shadow", "faults": list(faults)}],
        "guardrails": list(guardrails),
    }
    if alerts:
        raw["alerts"] = {"prometheus": "http://127.0.0.1:9090"}
    cfg = config_from_dict(raw, env={})
    ledger, registry = Ledger("x", None, None, keep=True), CollectorRegistry()
    metrics = Metrics(registry, cfg)
    journal = Journal(cfg, ledger, metrics, EPOCH)
    routes = {"src": RouteState(cfg.routes[0], 1, cfg.seed)}
    if routes["src"].pipeline is not None:
        journal.watch("src", routes["src"].pipeline)
    fwd = Forwarder(cfg, Producer(), OffsetTracker(), journal, routes)
    paused = []
    guard = Guard(cfg, journal, metrics, fwd, lambda: paused.append(True))
    return guard, fwd, ledger, registry, paused


def test_an_alert_during_the_episode_ends_it_as_detected_and_stops_the_fault():
    stop = {**DELAY, "stop_on": {"alert": "Lateness", "labels": {"topic": "src.shadow"}}}
    guard, fwd, ledger, registry, _ = guarded([stop])
    fwd.tick(10.0)  # the episode starts at experiment time 10
    stage = fwd.pipelines[0][1].stages[0]
    other = Alert(EPOCH + 11, {"alertname": "Lateness", "topic": "elsewhere"})
    early = Alert(EPOCH + 9, {"alertname": "Lateness", "topic": "src.shadow"})
    guard.take(deque([other, early]), 11.5)
    assert stage.intensity > 0  # another topic's alert, or one from before the episode
    guard.take(deque([Alert(EPOCH + 13.25, {"alertname": "Lateness", "topic": "src.shadow"})]), 14)
    assert stage.intensity == 0 and stage.stopped
    end = ledger.entries[-1]
    assert end["kind"] == "episode_end" and end["at"] == int((EPOCH + 14) * 1000)
    assert end["detail"]["reason"] == "detected" and end["detail"]["detection_delay"] == 3.25
    sample = registry.get_sample_value(
        "streamchaos_detection_delay_seconds_sum",
        {"experiment": "x", "route": "src", "fault": "slow"},
    )
    assert sample == 3.25
    fwd.tick(20.0)
    assert stage.intensity == 0  # stopped for the rest of the run: no new episode


def test_a_lag_guardrail_trips_once_per_crossing_and_resume_clears_its_gauge():
    rail = {"type": "consumer_lag", "group": "model", "max": 100}
    guard, _, ledger, registry, paused = guarded(guardrails=[rail], alerts=False)
    gauge = {"guardrail": "consumer_lag:model"}
    guard.take(deque([Lag("model", 50), Lag("other", 10_000)]), 1)
    assert paused == [] and registry.get_sample_value("streamchaos_guardrail_tripped", gauge) == 0
    guard.take(deque([Lag("model", 101)]), 2)
    assert paused == [True]
    assert registry.get_sample_value("streamchaos_guardrail_tripped", gauge) == 1
    line = ledger.entries[-1]
    assert line["kind"] == "guardrail" and line["detail"]["value"] == 101
    guard.resumed()
    guard.take(deque([Lag("model", 500)]), 3)  # still behind: the operator's resume stands
    assert (
        paused == [True] and registry.get_sample_value("streamchaos_guardrail_tripped", gauge) == 0
    )
    guard.take(deque([Lag("model", 0), Lag("model", 200)]), 4)  # fine again, then over
    assert paused == [True, True]


def test_produce_errors_per_minute_and_alert_guardrails():
    rails = [
        {"type": "produce_errors", "max_per_minute": 10},
        {"type": "alert", "alert": "ModelDown", "labels": {"severity": "critical"}},
    ]
    guard, _, ledger, _, paused = guarded(guardrails=rails)
    guard.errors(0, 0.0)
    guard.errors(10, 30.0)
    assert paused == []
    guard.errors(25, 59.0)  # 25 within the minute
    assert paused == [True]
    guard.errors(25, 200.0)  # none in the last minute: fine
    guard.take(deque([Alert(1.0, {"alertname": "ModelDown", "severity": "info"})]), 201)
    assert paused == [True]
    guard.take(deque([Alert(2.0, {"alertname": "ModelDown", "severity": "critical"})]), 202)
    assert paused == [True, True]
    assert [e["detail"]["guardrail"] for e in ledger.entries] == [
        "produce_errors",
        "alert:ModelDown",
    ]


def test_firing_edges_count_each_alert_once_across_overlapping_looks():
    edges = FiringEdges(step=1.0)
    a, b = {"alertname": "A"}, {"alertname": "B"}
    assert edges.feed([(a, [100.0, 101.0])]) == []  # the first look: already firing
    assert edges.feed([(a, [101.0, 102.0]), (b, [102.0])]) == [Alert(102.0, b)]
    assert edges.feed([(a, [105.0]), (b, [103.0])]) == [Alert(105.0, a)]  # a gap: again


def test_alert_settings_are_needed_by_stop_on_and_alert_guardrails():
    stop = {**DELAY, "stop_on": {"alert": "Lateness"}}
    with pytest.raises(ConfigError, match=r"routes\[0\]\.faults\[0\]\.stop_on: needs alerts"):
        guarded([stop], alerts=False)
    with pytest.raises(ConfigError, match=r"guardrails\[0\]: needs alerts"):
        guarded(guardrails=[{"type": "alert", "alert": "X"}], alerts=False)
    with pytest.raises(ConfigError, match=r"guardrails\[1\]\.name: 'consumer_lag:m' is used"):
        rail = {"type": "consumer_lag", "group": "m", "max": 1}
        guarded(guardrails=[rail, rail], alerts=False)
    plain = config_from_dict(
        {"experiment": "x", "routes": [{"source": "src", "shadow": "src.shadow"}]}, env={}
    )
    with pytest.raises(ConfigError, match=r"faults\[0\]\.stop_on: needs alerts"):
        added(plain, "src", parse_fault(stop))


def test_plan_change_and_guardrail_lines_leave_the_episodes_as_they_are():
    start = {"experiment": "x", "route": "r", "fault": "f", "type": "drift", "at": 1000}
    lines = [
        {**start, "kind": "episode_start", "detail": {"fraction": 0.5}},
        {**start, "kind": "plan_change", "at": 1500, "detail": {"action": "add"}},
        {"experiment": "x", "route": None, "fault": None, "type": None, "kind": "guardrail"}
        | {"at": 1800, "detail": {"guardrail": "g"}},
        {**start, "kind": "episode_end", "at": 3000, "detail": {"reason": "detected"}},
    ]
    entries = _entries((f"line {i}", json.dumps(e)) for i, e in enumerate(lines))
    [episode] = episodes_from_ledger(entries)
    assert (episode.start, episode.end, episode.fraction) == (1.0, 3.0, 0.5)
    with pytest.raises(ConfigError, match=r"plan_change needs detail\.action"):
        _entries([("line 9", '{"kind": "plan_change", "detail": {"action": "fly"}}')])


def test_the_sentinel_outlives_bad_prometheus_answers_and_reads_the_good_ones(caplog):
    """Answers without data, a JSON array, and not JSON at all are logged; the next good
    answer's new alert is found (a stand-in HTTP server: the real Prometheus is in the
    integration tests)."""
    import http.server
    import threading
    import time

    from streamchaos.bridge.sentinel import Sentinel

    t0 = time.time()
    firing = {"metric": {"alertname": "Drift", "alertstate": "firing"}, "values": []}
    good = {"status": "success", "data": {"resultType": "matrix", "result": [firing]}}
    answers = [b'{"status": "success", "data": null}', b"[1, 2]", b"<html>", None]

    class Fake(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = answers.pop(0) if answers else None
            if body is None:  # from the fourth look on: firing since the third
                n = int((time.time() - t0 - 0.1) / 0.05) + 1  # a sample every step
                firing["values"] = [[t0 + 0.1 + 0.05 * k, "1"] for k in range(n)]
                body = json.dumps(good).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cfg = config_from_dict(
        {
            "experiment": "x",
            "routes": [{"source": "src", "shadow": "src.shadow"}],
            "alerts": {"prometheus": url, "interval": "50ms"},
        },
        env={},
    )
    sentinel = Sentinel(cfg, {}, {}, {})
    sentinel.edges.primed = True  # count what fires from the first look on
    sentinel.start()
    try:
        deadline = time.monotonic() + 20
        while not sentinel.found and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sentinel.stop()
        server.shutdown()
    [alert] = list(sentinel.found)
    assert alert.labels["alertname"] == "Drift" and alert.at == t0 + 0.1
    assert "cannot read Prometheus alerts" in caplog.text
