"""Scoring a run as one library call: read the inputs, score them, return the scorecard.

``scoring`` is pure; this module does the fetching around it: the ledger (a JSON Lines
file, or entries already read, e.g. with ``read_ledger_topic``) and the alerts (a JSON
Lines file, a Kafka topic of the same objects, or Prometheus's ``ALERTS`` over the run).
``streamchaos score`` only turns its flags into these arguments and prints the result.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from streamchaos.errors import ConfigError, StreamChaosError
from streamchaos.evaluation.alerts import Alert, alerts_from_jsonl, alerts_from_prometheus
from streamchaos.evaluation.episodes import Episode, episodes_from_ledger
from streamchaos.evaluation.scorecard import Scorecard
from streamchaos.evaluation.scoring import score
from streamchaos.ledger import read_ledger

QUERY = 'ALERTS{alertstate="firing", source!="streamchaos"}'
LedgerSource = str | os.PathLike[str] | Iterable[dict[str, Any]]  # a file, or its entries


class ScoredRun(NamedTuple):
    card: Scorecard
    alerts: list[Alert]


def score_run(
    ledger: LedgerSource,
    *,
    alerts: str | os.PathLike[str] | None = None,
    alerts_topic: str | None = None,
    prometheus: str | None = None,
    bootstrap_servers: str | None = None,
    experiment: str | None = None,
    faults: Sequence[str] | None = None,
    max_delay: float = 60.0,
    early: float = 0.0,
    warmup: float = 0.0,
    run_start: float | None = None,
    run_end: float | None = None,
    step: float = 5.0,
) -> ScoredRun:
    """Score the alerts of one source (``alerts`` file, ``alerts_topic`` or ``prometheus``
    URL, queried every ``step`` s) against the ledger's episodes, by
    ``docs/detector-scoring.md`` (``max_delay`` D, ``early`` ε, ``warmup`` P; seconds).

    ``experiment`` keeps that experiment's entries; ``faults`` the episodes whose fault
    name or type is listed. The run spans ``run_start``..``run_end`` (epoch seconds),
    by default the first and last window edge or alert.
    """
    entries = read_ledger(ledger) if isinstance(ledger, str | os.PathLike) else list(ledger)
    if experiment:
        entries = [e for e in entries if e.get("experiment") == experiment]
    episodes = episodes_from_ledger(entries)
    if faults:
        episodes = [e for e in episodes if e.fault in faults or e.type in faults]
    found = load_alerts(
        episodes,
        path=alerts,
        topic=alerts_topic,
        prometheus=prometheus,
        bootstrap_servers=bootstrap_servers,
        pad=max_delay,
        step=step,
    )
    card = score(
        episodes,
        found,
        max_delay=max_delay,
        early=early,
        warmup=warmup,
        run_start=run_start,
        run_end=run_end,
    )
    return ScoredRun(card, found)


def load_alerts(
    episodes: list[Episode],
    *,
    path: str | os.PathLike[str] | None = None,
    topic: str | None = None,
    prometheus: str | None = None,
    bootstrap_servers: str | None = None,
    pad: float = 60.0,
    step: float = 5.0,
) -> list[Alert]:
    """Alerts from the first source given: a file, a topic, or Prometheus (over the
    episodes, ``pad`` seconds past the last end)."""
    if path:
        try:
            return alerts_from_jsonl(Path(path).read_text().splitlines())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read alerts: {exc.strerror}") from exc
    if topic:
        from streamchaos.kafkatools import read_all

        if not bootstrap_servers:
            raise ConfigError("bootstrap_servers: required to read an alerts topic")
        msgs = read_all(bootstrap_servers, topic)
        return alerts_from_jsonl((m.value() or b"").decode(errors="replace") for m in msgs)
    if prometheus:
        return prometheus_alerts(prometheus, episodes, pad, step)
    raise ConfigError("alerts: give a file, a topic or a Prometheus URL")


def prometheus_alerts(url: str, episodes: list[Episode], pad: float, step: float) -> list[Alert]:
    """``ALERTS{alertstate="firing"}`` over the run, from Prometheus's HTTP API.

    Alerts labelled ``source="streamchaos"`` (rules over the injector's own counters, as in
    configs/alerts.yml) are ground truth, not detections, and are left out.
    """
    if not episodes:
        return []
    start = min(e.start for e in episodes) - 60
    end = max(e.end for e in episodes) + pad
    return alerts_from_prometheus(alerts_range(url, start, end, step), step=step)


def alerts_range(url: str, start: float, end: float, step: float, timeout: float = 30) -> Any:
    """Prometheus's answer to ``QUERY`` over [start, end] every ``step`` seconds (what
    ``score`` scores and the running bridge's ``stop_on`` watches)."""
    query = urllib.parse.urlencode({"query": QUERY, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(
            f"{url.rstrip('/')}/api/v1/query_range?{query}", timeout=timeout
        ) as resp:
            return json.load(resp)
    except OSError as exc:
        raise StreamChaosError(f"cannot query Prometheus at {url}: {exc}") from exc


def save_scorecard(card: Scorecard, path: str | os.PathLike[str]) -> None:
    """The scorecard as JSON (``Scorecard.to_dict``), its folder created if need be."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(card.to_dict(), indent=2))
