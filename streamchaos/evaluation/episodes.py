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

    The ledger is append-only and a run can die between the two entries, so a start left
    open ends at the latest ``at`` seen before that fault's next start, or else at the
    ledger's last ``at``: as far as ground truth knows, the fault was active that long.
    An end with no open start (a ledger cut at the front) says nothing usable: skipped.
    """
    open_: dict[tuple[Any, Any, Any], tuple[dict[str, Any], float]] = {}
    out: list[Episode] = []
    last = -math.inf
    for i, entry in enumerate(one_per_episode(entries)):
        kind, at_ms = entry.get("kind"), entry.get("at")
        if not is_number(at_ms):
            if kind in ("episode_start", "episode_end"):
                raise StreamChaosError(f"ledger entry {i}: {kind} without a numeric 'at' (ms)")
            continue
        at = at_ms / 1000.0
        key = (entry.get("experiment"), entry.get("route"), entry.get("fault"))
        if kind == "episode_start":
            if key in open_:
                out.append(_episode(*open_.pop(key), end=last))
            open_[key] = (entry, at)
        elif kind == "episode_end" and key in open_:
            out.append(_episode(*open_.pop(key), end=at))
        last = max(last, at)
    out.extend(_episode(entry, start, end=last) for entry, start in open_.values())
    return sorted(out, key=episode_order)


def one_per_episode(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger with each episode's start and end once. Bridges that share ``start_at``
    (a consumer group, a restart) each write the episodes of the schedule, with the bound
    the schedule gives (``scheduled_at``; ``event_at`` under the event clock): the first
    line of each is kept, and an end's counts are summed over the bridges, each of which
    counted the records of its own partitions."""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    out = []
    for entry in entries:
        kind, detail = entry.get("kind"), entry.get("detail")
        if kind not in ("episode_start", "episode_end") or not isinstance(detail, dict):
            out.append(entry)
            continue
        bound = detail.get("scheduled_at", detail.get("event_at"))
        if bound is None:
            out.append(entry)
            continue
        key = (entry.get("experiment"), entry.get("route"), entry.get("fault"), kind, bound)
        first = kept.get(key)
        if first is None:
            kept[key] = first = {**entry, "detail": dict(detail)}
            out.append(first)
        elif kind == "episode_end":
            counts = first["detail"]
            for name in ("records", "injected"):
                if is_number(counts.get(name)) and is_number(detail.get(name)):
                    counts[name] += detail[name]
            if is_number(counts.get("records")) and counts["records"]:
                counts["realised_fraction"] = round(counts["injected"] / counts["records"], 6)
    return out


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
