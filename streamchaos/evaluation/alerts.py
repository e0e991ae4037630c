"""Detector alerts, from JSON Lines (a file or a Kafka topic of the same objects) or from a
Prometheus ``query_range`` answer over ``ALERTS``. Pure parsing: fetching them is
``streamchaos.evaluation.scorer``'s job.

>>> alerts_from_jsonl(['{"at_ms": 1500, "labels": {"feature": "amount"}}', ""])
[Alert(at=1.5, labels={'feature': 'amount'})]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from streamchaos.errors import StreamChaosError
from streamchaos.evaluation.scoring_nab import is_number

MS_LOOKING = 1e11  # epoch seconds past the year 5000: surely milliseconds under the wrong key


@dataclass(frozen=True)
class Alert:
    """One detector alarm at ``at`` epoch seconds; labels are kept for matching and reports."""

    at: float
    labels: dict[str, Any] = field(default_factory=dict)


def alert_from_dict(obj: Any) -> Alert:
    """``{"at": epoch s}`` or ``{"at_ms": epoch ms}``, optional ``"labels": {...}``.

    An ``at`` that can only be milliseconds is refused rather than read as the year 55000:
    a unit slip must not silently turn every alert into a false alarm.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "at" in obj:
        at = obj["at"]
        if not is_number(at) or abs(at) >= MS_LOOKING:
            raise ValueError(f"'at' must be finite epoch seconds (else use 'at_ms'), got {at!r}")
    elif "at_ms" in obj:
        if not is_number(obj["at_ms"]):
            raise ValueError(f"'at_ms' must be a finite number, got {obj['at_ms']!r}")
        at = obj["at_ms"] / 1000.0
    else:
        raise ValueError("no 'at' (epoch seconds) or 'at_ms' (epoch ms)")
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValueError(f"'labels' must be an object, got {labels!r}")
    return Alert(float(at), dict(labels))


def alerts_from_jsonl(lines: Iterable[str]) -> list[Alert]:
    """One alert per non-blank line, sorted by time; a bad line raises, naming its number."""
    alerts = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            alerts.append(alert_from_dict(json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise StreamChaosError(f"alerts line {n}: {exc}") from exc
    return sorted(alerts, key=lambda a: a.at)


def alerts_from_prometheus(result: dict[str, Any], *, step: float | None = None) -> list[Alert]:
    """One alert per rising edge of each firing ``ALERTS`` series in a ``query_range`` answer.

    Prometheus repeats a firing alert at every step, so samples less than 1.5 steps apart
    are one run, alerting at its first sample. The answer does not carry the query's step:
    pass it; otherwise it is inferred as the smallest gap between samples, which is wrong
    when no run ever lasted two samples. Series in another ``alertstate`` are skipped.
    """
    if result.get("status") == "error":
        raise StreamChaosError(f"Prometheus query failed: {result.get('error', 'no reason')}")
    data = result.get("data", result)
    if data.get("resultType") != "matrix":
        raise StreamChaosError(f"expected a query_range (matrix) answer: {data.get('resultType')}")
    firing = firing_series(data)
    gaps = [b - a for _, times in firing for a, b in pairwise(times) if b > a]
    step = step if step is not None else min(gaps, default=None)
    alerts = [
        Alert(t, dict(labels))
        for labels, times in firing
        for prev, t in zip([None, *times], times, strict=False)
        if prev is None or step is None or t - prev > 1.5 * step
    ]
    return sorted(alerts, key=lambda a: a.at)


def firing_series(data: dict[str, Any]) -> list[tuple[dict[str, str], list[float]]]:
    """Each firing ``ALERTS`` series of a matrix answer's ``data``: its labels and the
    times of its samples, ascending (series with none left out)."""
    try:
        series = [_firing(s) for s in data.get("result", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamChaosError(f"malformed Prometheus answer: {exc!r}") from exc
    return [(labels, times) for labels, times in series if times]


def _firing(series: dict[str, Any]) -> tuple[dict[str, str], list[float]]:
    labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
    if labels.get("alertstate", "firing") != "firing":
        return labels, []
    return labels, sorted(float(t) for t, v in series["values"] if float(v) != 0)
