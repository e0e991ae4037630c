"""``streamchaos sweep`` recovers a known curve on the real broker.

The detector is a z-test of the mean on windows of n records of a N(0, 1) feature, alarming
when |mean|·√n > z. A drift that shifts a fraction f of the records by k has, per window,
the power p = Φ((f·k·√n − z)/s) + Φ((−f·k·√n − z)/s) with s² = 1 + f(1 − f)·k² (the
mixture's variance), so an episode of m windows is detected with probability
1 − (1 − p)^m. The sweep's recall per cell must rise with the severity and its interval
hold that rate (m from the records the ledger says each episode saw)."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer

from streamchaos.evaluation.episodes import episodes_from_ledger
from streamchaos.evaluation.scoring_nab import wilson
from streamchaos.evaluation.sweep_report import records_seen, report, write_outputs
from streamchaos.kafkatools import unique_name
from streamchaos.sweep import SweepGrid, run_sweep, score_sweep
from tests.integration.conftest import produce_gaussian

pytestmark = pytest.mark.integration
N, Z, RATE = 50, 4.0, 1000  # window, threshold, records per second
SEVERITIES, FRACTIONS = [0.2, 0.4, 0.8], [0.5, 1.0]


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def expected_recall(k: float, f: float, windows: float) -> float:
    s = math.sqrt(1 + f * (1 - f) * k * k)
    shift = f * k * math.sqrt(N)
    p = phi((shift - Z) / s) + phi((-shift - Z) / s)
    return 1 - (1 - p) ** max(windows, 0)


def z_test(bootstrap: str, topic: str, alerts: Path, stop: threading.Event) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("z"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    window: list[float] = []
    try:
        with alerts.open("a") as out:
            while not stop.is_set():
                for msg in consumer.consume(500, 0.2):
                    if msg.error():
                        continue
                    window.append(json.loads(msg.value())["x"])
                    if len(window) == N:
                        if abs(sum(window) / N) * math.sqrt(N) > Z:
                            out.write(json.dumps({"at": time.time()}) + "\n")
                            out.flush()
                        window.clear()
    finally:
        consumer.close()


@pytest.mark.timeout(600)
def test_a_sweep_recovers_the_z_tests_known_recall_curve(kafka_bootstrap, topic_factory, tmp_path):
    source, shadow = topic_factory(), topic_factory(suffix=".shadow")
    experiment = tmp_path / "base.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "experiment": "sweep-it",
                "seed": 3,
                "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id": unique_name("g")},
                "routes": [{"source": source, "shadow": shadow, "format": "json"}],
                "metrics": {"port": 0},
            }
        )
    )
    alerts = tmp_path / "alerts.jsonl"
    grid = SweepGrid(
        experiment=str(experiment),
        fault={"type": "drift", "warmup": 2, "features": {"x": {"shift": "{severity}"}}},
        severity=SEVERITIES,
        fraction=FRACTIONS,
        repeats=6,
        episode=1.0,
        gap=1.0,
        max_delay=0.5,
        alerts={"file": str(alerts)},
        out=str(tmp_path / "out"),
    )
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=produce_gaussian,
            args=(kafka_bootstrap, source, "x", 0.0, 1.0, RATE, 11, stop.is_set),
            daemon=True,
        ),
        threading.Thread(target=z_test, args=(kafka_bootstrap, shadow, alerts, stop), daemon=True),
    ]
    for w in workers:
        w.start()
    try:
        run = run_sweep(grid, env={})
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    rep = report(run.cells, score_sweep(run), grid.recall_target, records_seen(run.ledger))
    paths = write_outputs(rep, Path(grid.out))

    seen = {e.fault: e.detail for e in episodes_from_ledger(run.ledger)}
    assert len(seen) == len(run.cells) and rep.not_run == []
    records = {c.name: _records(run.ledger, c.name) for c in run.cells}
    for row in rep.rows:
        names = [
            c.name for c in run.cells if (c.severity, c.fraction) == (row.severity, row.fraction)
        ]
        windows = sum(records[n] for n in names) / len(names) / N - 1
        expected = expected_recall(row.severity, row.fraction, windows)
        lo, hi = wilson(row.detected, row.repeats, z=3.29)  # 99.9 %: 6 cells, one run
        assert lo <= expected <= hi, (row, expected, rep.table())
    for fraction in FRACTIONS:
        curve = [r.recall for r in rep.rows if r.fraction == fraction]
        assert curve == sorted(curve), (fraction, rep.table())
    assert set(rep.min_detectable) == set(FRACTIONS)
    assert {p.name for p in paths} == {"sweep.json", "sweep.csv", "recall.png", "delay.png"}
    assert (Path(grid.out) / "recall.png").read_bytes()[:4] == b"\x89PNG"


def _records(ledger: list[dict], fault: str) -> int:
    """Records the cell's episode saw, from its episode_end line."""
    ends = [e for e in ledger if e.get("fault") == fault and e.get("kind") == "episode_end"]
    return int(ends[-1]["detail"]["records"]) if ends else 0
