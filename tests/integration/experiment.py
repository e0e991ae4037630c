"""Run a whole experiment in-process: synthetic traffic → bridge → watch on the shadow."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.config import config_from_dict
from streamchaos.evaluation.synth import produce_synthetic
from streamchaos.evaluation.watch import WatchSettings
from streamchaos.evaluation.watch_runner import Watcher, WatchOptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    ledger: Path
    alerts: Path
    start: float
    end: float


def run_experiment(
    bootstrap: str,
    registry: str,
    source: str,
    shadow: str,
    group: str,
    tmp: Path,
    faults: list[dict[str, Any]],
    *,
    seconds: float = 24,
    rate: float = 600,
    bridge_port: int = 0,
    watch_port: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Run:
    """``extra``: more experiment settings (e.g. ``alerts``)."""
    raw = {
        "experiment": "e2e",
        "seed": 7,
        "kafka": {"bootstrap_servers": bootstrap, "group_id": group},
        "schema_registry": {"url": registry},
        "routes": [{"source": source, "shadow": shadow, "format": "avro", "faults": faults}],
        "ledger": {"path": str(tmp / "ledger.jsonl")},
        "metrics": {"port": bridge_port},
        **(extra or {}),
    }
    bridge = Bridge(config_from_dict(raw, env={}), registry=CollectorRegistry())
    watcher = Watcher(
        WatchOptions(
            bootstrap,
            shadow,
            registry_url=registry,
            alerts_path=tmp / "alerts.jsonl",
            metrics_port=watch_port,
            idle_exit=8,
        ),
        WatchSettings(reference=1000, window=500),
    )
    codes: dict[str, int] = {}
    threads = [
        threading.Thread(target=lambda: codes.update(bridge=bridge.run(idle_exit=5)), daemon=True),
        threading.Thread(target=lambda: codes.update(watch=watcher.run()), daemon=True),
    ]
    for t in threads:
        t.start()
    start = time.time()
    synth = produce_synthetic(bootstrap, registry, source, duration=seconds, rate=rate, seed=7)
    end = time.time()
    for t in threads:
        t.join(90)
    assert synth.ok, f"every synthetic record must be delivered: {synth}"
    assert codes == {"bridge": 0, "watch": 0}, f"bridge and watcher must end cleanly: {codes}"
    return Run(tmp / "ledger.jsonl", tmp / "alerts.jsonl", start, end)
