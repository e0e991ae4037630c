"""Close the loop: faults → the reference detector → the scorecard, on the real broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streamchaos.evaluation import alerts_from_jsonl, episodes_from_ledger, score
from streamchaos.evaluation.scorer import save_scorecard, score_run
from streamchaos.evaluation.timeline import write_timeline
from streamchaos.ledger import read_ledger
from tests.integration.experiment import free_port, run_experiment

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DRIFT = [
    {
        "type": "drift",
        "name": "amount-drift",
        "warmup": 500,
        "features": {"amount": {"shift": 2, "unit": "sigma"}},
        "schedule": {"start": "8s", "duration": "8s"},
    }
]


def score_of(run, **sources):
    """Score a run as ``streamchaos score`` does (D = 10 s, a 1 s Prometheus step)."""
    return score_run(
        run.ledger, max_delay=10, step=1, run_start=run.start, run_end=run.end, **sources
    )


def test_watch_detects_a_two_sigma_step_and_the_scorecard_says_so(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    run = run_experiment(
        kafka_bootstrap, schema_registry_url, source, shadow, group_id, tmp_path, DRIFT
    )
    card, alerts = score_of(run, alerts=run.alerts)
    save_scorecard(card, tmp_path / "card.json")
    write_timeline(card, alerts, tmp_path / "timeline.png")
    assert card.episodes == 1 and card.recall == 1.0, card.table()
    [row] = card.results
    assert 0 <= row.delay <= 10
    assert any(a.labels.get("feature") == "amount" for a in alerts)
    assert json.loads((tmp_path / "card.json").read_text())["recall"] == 1.0
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_control_run_without_faults_reports_no_detections_and_its_false_alarms(
    kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    run = run_experiment(
        kafka_bootstrap, schema_registry_url, source, shadow, group_id, tmp_path, [], seconds=15
    )
    episodes = episodes_from_ledger(read_ledger(run.ledger))
    alerts = alerts_from_jsonl(run.alerts.read_text().splitlines())
    card = score(episodes, alerts, max_delay=10, run_start=run.start, run_end=run.end)
    assert card.episodes == 0 and card.detected == 0
    assert card.false_alarms == len(alerts)
    assert card.arl0 is not None and card.clean_time == pytest.approx(run.end - run.start, rel=0.2)


PROMETHEUS = shutil.which("prometheus")


def start_prometheus(tmp: Path, port: int, targets: dict[str, int]) -> subprocess.Popen:
    rules = tmp / "alerts.yml"
    rules.write_text((ROOT / "configs/alerts.yml").read_text())
    scrape = "\n".join(
        f"  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:{p}']}}]"
        for job, p in targets.items()
    )
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{rules}]\nscrape_configs:\n{scrape}\n"
    )
    return subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(tmp / "prometheus.log").open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "prometheus exited"
        try:
            if urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("prometheus not ready")


def query(url: str, q: str) -> list:
    from urllib.parse import quote

    body = json.load(urllib.request.urlopen(f"{url}/api/v1/query?query={quote(q)}", timeout=10))
    return body["data"]["result"]


@pytest.fixture
def observed(kafka_bootstrap, schema_registry_url, topic_factory, group_id, tmp_path):
    """``observed(faults, **options)`` → (run, Prometheus URL): an experiment run while a
    real Prometheus scrapes the bridge and ``streamchaos watch`` and evaluates
    configs/alerts.yml; the server is stopped after the test."""
    assert PROMETHEUS, "the prometheus server is missing: `make test` installs it (Debian)"
    ports = {"prom": free_port(), "bridge": free_port(), "watch": free_port()}
    url = f"http://127.0.0.1:{ports['prom']}"
    prom = start_prometheus(
        tmp_path, ports["prom"], {"bridge": ports["bridge"], "watch": ports["watch"]}
    )

    def run(faults, **options):
        source = topic_factory(partitions=1)
        shadow = topic_factory(partitions=1, suffix=".shadow")
        done = run_experiment(
            kafka_bootstrap,
            schema_registry_url,
            source,
            shadow,
            group_id,
            tmp_path,
            faults,
            bridge_port=ports["bridge"],
            watch_port=ports["watch"],
            **options,
        )
        return done, url

    run.url = url
    try:
        wait_ready(url, prom)
        yield run
    finally:
        prom.terminate()
        prom.wait(30)


def test_real_prometheus_scrapes_evaluates_rules_and_feeds_the_scorer(observed):
    run, url = observed(DRIFT)
    # the run is over and its targets gone: read what was scraped during it
    injected = query(url, "max_over_time(streamchaos_injections_total[10m])")
    assert injected and float(injected[0]["value"][1]) > 0
    card, _ = score_of(run, prometheus=url, faults=["drift"])
    assert card.recall == 1.0, card.table()
    fired = query(url, 'max_over_time(ALERTS{alertstate="firing"}[10m])')
    names = {a["metric"]["alertname"] for a in fired}
    assert {"FeatureDrift", "ChaosInjecting"} <= names


def test_a_drift_with_stop_on_ends_when_its_alert_fires_and_score_agrees(observed):
    """The bridge reads ALERTS from the real Prometheus while it runs: FeatureDrift from
    ``streamchaos watch`` ends the drift's episode (reason detected, its delay recorded),
    and ``score`` over the same Prometheus finds the same delay, give or take a step."""
    stop = [{**DRIFT[0], "stop_on": {"alert": "FeatureDrift", "labels": {"feature": "amount"}}}]
    stop[0]["schedule"] = {"start": "8s", "duration": "60s"}  # only the alert ends it early
    alerts = {"alerts": {"prometheus": observed.url, "interval": "1s"}}
    run, url = observed(stop, seconds=30, extra=alerts)
    ledger = read_ledger(run.ledger)
    [start] = [e for e in ledger if e["kind"] == "episode_start"]
    [end] = [e for e in ledger if e["kind"] == "episode_end"]
    assert end["detail"]["reason"] == "detected", end
    recorded = end["detail"]["detection_delay"]
    assert end["detail"]["alert"]["alertname"] == "FeatureDrift"
    assert end["at"] - start["at"] < 60_000  # ended by the alert, not the schedule
    card, _ = score_of(run, prometheus=url, faults=["drift"])
    [row] = card.results
    assert row.detected and abs(row.delay - recorded) <= 2.0, (row.delay, recorded)


def test_demo_writes_its_outputs(kafka_bootstrap, schema_registry_url, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/demo.py"), "--out", str(out), "--seconds", "125"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("demo-ledger.jsonl", "demo-alerts.jsonl", "scorecard.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "recall" in proc.stdout and str(out) in proc.stdout
