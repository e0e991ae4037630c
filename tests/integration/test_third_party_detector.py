"""docs/third-party-detectors.md, run as written: river's ADWIN reads the shadow during a
live experiment, its alarms go to `streamchaos score`, and the NaN trap the page warns of
is real on the same records."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from river import drift

from streamchaos.kafkatools import read_all
from tests.integration.conftest import produce_gaussian

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIFT = {
    "type": "drift",
    "name": "amount-shift",
    "fraction": 0.5,
    "features": {"amount": {"shift": 20}},  # 2σ on half the records: the mean moves 1σ
    "schedule": {"start": "8s", "duration": "8s"},
}
NANS = {"type": "corrupt", "name": "nans", "mode": "nan", "fields": ["amount"], "fraction": 0.01}


def documented_detector():
    """The page's code block, executed: the detector the docs show is the one tested."""
    doc = (ROOT / "docs/third-party-detectors.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/third-party-detectors.md", "exec"), namespace)
    return namespace["adwin_alarms"]


def test_river_adwin_on_the_shadow_is_scored(
    kafka_bootstrap, topic_factory, chaos_bridge, tmp_path
):
    adwin_alarms = documented_detector()
    source, shadow = topic_factory(), topic_factory(suffix=".shadow")
    ledger, alerts = tmp_path / "ledger.jsonl", tmp_path / "adwin.jsonl"
    bridge = chaos_bridge(
        {
            "routes": [
                {"source": source, "shadow": shadow, "format": "json", "faults": [SHIFT, NANS]}
            ],
            "ledger": {"path": str(ledger)},
        }
    )
    start = time.time()
    detector = threading.Thread(
        target=adwin_alarms, args=(kafka_bootstrap, shadow, "amount", alerts, 28.0), daemon=True
    )
    detector.start()
    deadline = time.monotonic() + 22
    sent = produce_gaussian(
        kafka_bootstrap, source, "amount", 50.0, 10.0, rate=400, seed=3,
        done=lambda: time.monotonic() >= deadline,
    )  # fmt: skip
    detector.join(60)
    assert not detector.is_alive()
    assert bridge.stop() == 0
    end = time.time()

    scored = subprocess.run(
        [sys.executable, "-m", "streamchaos", "score", "--ledger", str(ledger),
         "--alerts", str(alerts), "--max-delay", "10", "--json", str(tmp_path / "card.json"),
         "--run-start", str(start), "--run-end", str(end), "--fault", "amount-shift"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["episodes"] == 1 and card["recall"] == 1.0, scored.stdout

    # The trap: on the very records of the shadow, one NaN stops ADWIN for good.
    values = [json.loads(m.value())["amount"] for m in read_all(kafka_bootstrap, shadow)]
    assert len(values) == sent and any(math.isnan(v) for v in values)
    assert changes(values, skip_non_finite=True) > 0
    assert changes(values, skip_non_finite=False) == 0


def changes(values: list[float], skip_non_finite: bool) -> int:
    detector, found = drift.ADWIN(), 0
    for x in values:
        if skip_non_finite and not math.isfinite(x):
            continue
        detector.update(x)
        found += detector.drift_detected
    return found
