"""Ground truth for scoring: the ledger's episode entries paired into ``Episode`` windows.

Exact times from the ledger, never Prometheus series (quantised to the evaluation
interval). Also what each episode is about, for the scorecard's strata: the features a
fault targets, its fraction and its strength. Pure: no Kafka, no clock.

>>> [ep] = episodes_from_ledger([
...     {"kind": "episode_start", "fault": "f", "type": "drift", "at": 10_000,
...      "detail": {"fraction": 0.5, "features": {"amount": {}}}},
...     {"kind": "episode_end", "fault": "f", "at": 20_000}])
>>> ep.start, ep.end, ep.features, ep.fraction
(10.0, 20.0, ('amount',), 0.5)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamchaos.errors import StreamChaosError
from streamchaos.evaluation.scoring_nab import is_number

FEATURE_KEYS = ("field", "fields", "feature", "features")
SEVERITY_KEYS = ("severity", "shift", "magnitude", "scale", "mode", "delay")


@dataclass(frozen=True)
class Episode:
    """One fault episode; times are epoch seconds. ``detail`` is the fault's config dump."""

    fault: str
    type: str
    route: str
    start: float
    end: float
    detail: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = ()
    fraction: float | None = None
    severity: str | None = None


def episodes_from_ledger(entries: Iterable[dict[str, Any]]) -> list[Episode]:
    """Pair each ``episode_start`` with the next ``episode_end`` of its (experiment, route,
    fault); ledger ``at`` is epoch ms. Injection entries only advance the clock.

    Bridges that share ``start_at`` (a consumer group) each write the episodes of the
    schedule, with the schedule's bound (``scheduled_at``; ``event_at`` under the event
    clock): a start with the bound of the episode open joins it, which then ends with the
    last of its ends. A restarted bridge's start after that end is an episode of its own.

    The ledger is append-only and a run can die between the two entries, so a start left
    open ends at the latest ``at`` seen before that fault's next start, or else at the
    ledger's last ``at``: as far as ground truth knows, the fault was active that long.
    An end with no open start (a ledger cut at the front) says nothing usable: skipped.
    """
    open_: dict[tuple[Any, Any, Any], list[Any]] = {}  # start entry, at, bound, bridges
    out: list[Episode] = []
    last = -math.inf
    for i, entry in enumerate(entries):
        kind, at_ms = entry.get("kind"), entry.get("at")
        if not is_number(at_ms):
            if kind in ("episode_start", "episode_end"):
                raise StreamChaosError(f"ledger entry {i}: {kind} without a numeric 'at' (ms)")
            continue
        at = at_ms / 1000.0
        key = (entry.get("experiment"), entry.get("route"), entry.get("fault"))
        current = open_.get(key)
        if kind == "episode_start":
            bound = _bound(entry)
            if current is not None and bound is not None and current[2] == bound:
                current[3] += 1  # another bridge's start of the same episode
            else:
                if current is not None:
                    out.append(_episode(current[0], current[1], end=last))
                open_[key] = [entry, at, bound, 1]
        elif kind == "episode_end" and current is not None:
            current[3] -= 1
            if current[3] == 0:
                out.append(_episode(current[0], current[1], end=at))
                del open_[key]
        last = max(last, at)
    out.extend(_episode(entry, start, end=last) for entry, start, *_ in open_.values())
    return sorted(out, key=episode_order)


def _bound(entry: dict[str, Any]) -> Any:
    """The schedule's bound an episode line carries, if any."""
    detail = entry.get("detail")
    return detail.get("scheduled_at", detail.get("event_at")) if isinstance(detail, dict) else None


def _episode(entry: dict[str, Any], start: float, *, end: float) -> Episode:
    detail = entry.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    fraction = detail.get("fraction")
    return Episode(
        fault=str(entry.get("fault") or ""),
        type=str(entry.get("type") or ""),
        route=str(entry.get("route") or ""),
        start=start,
        end=max(start, end),
        detail=detail,
        features=_features(detail),
        fraction=float(fraction) if is_number(fraction) else None,
        severity=_severity(detail),
    )


def _features(detail: dict[str, Any]) -> tuple[str, ...]:
    """Feature names a fault targets: ``field``/``fields``/``feature``/``features``, each a
    name, a list of names, or a dict keyed by name (per-feature settings)."""
    names: list[str] = []
    for key in FEATURE_KEYS:
        value = detail.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, dict | list | tuple):
            names.extend(str(v) for v in value)
    return tuple(dict.fromkeys(names))


def _severity(detail: dict[str, Any]) -> str | None:
    """The first strength-like setting, as ``key=value`` so strata of different fault types
    (a 0.5 s delay, a 0.5 σ shift) never merge."""
    for key in SEVERITY_KEYS:
        value = detail.get(key)
        if value is not None:
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            return f"{key}={shown}"
    return None


def episode_order(ep: Episode) -> tuple[float, float, str, str]:
    """Episodes sort by start, then end, route and fault."""
    return ep.start, ep.end, ep.route, ep.fault
