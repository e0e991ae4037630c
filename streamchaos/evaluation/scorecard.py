"""What scoring returns: per-episode results, summaries, the ``Scorecard`` and its two
renderings (a JSON-safe dict, a plain-text table for a terminal or a CI log).

Kept apart from the rules in ``scoring`` so the report can change without touching
the arithmetic of ``docs/detector-scoring.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamchaos.evaluation.alerts import Alert
from streamchaos.evaluation.episodes import Episode
from streamchaos.evaluation.scoring_nab import (
    Window,
    arl0,
    nab_normalised,
    poisson_interval,
    ratio,
    wilson,
)


@dataclass(frozen=True)
class EpisodeResult:
    """One episode's outcome; ``delay`` = first alert − start (negative inside ε)."""

    episode: Episode
    window: Window
    detected: bool
    first_alert: Alert | None
    delay: float | None
    redundant: int


@dataclass(frozen=True)
class Summary:
    """The per-episode figures (rules 2, 3, 5), for a whole run or one stratum.
    None means undefined: no episodes, or no detections to take a delay from."""

    episodes: int
    detected: int
    recall: float | None
    redundant: int
    delay_mean: float | None
    delay_median: float | None
    delay_p90: float | None
    delay_penalised_mean: float | None

    @property
    def missed(self) -> int:
        return self.episodes - self.detected

    @property
    def recall_interval(self) -> tuple[float, float] | None:
        """Wilson 95 % interval of the recall: with 3 episodes, 3 detected says ≥ 0.44."""
        return wilson(self.detected, self.episodes) if self.episodes else None

    @property
    def missed_rate(self) -> float | None:
        return None if self.recall is None else 1.0 - self.recall


@dataclass(frozen=True)
class Scorecard(Summary):
    """Whole-run figures. False alarms belong to no episode, so they and what derives from
    them (precision, F1, FAR, ARL0, NAB) are not stratified: ``by`` maps each stratum
    (type, fault, route, feature, fraction, severity) to a Summary per value."""

    false_alarms: int
    mismatched: int
    ignored: int
    run: Window
    clean_time: float
    rate_period: float
    nab_raw: float
    false_alarm_at: tuple[float, ...]
    results: tuple[EpisodeResult, ...]
    by: dict[str, dict[str, Summary]]

    @property
    def far(self) -> float | None:
        """False alarms per ``rate_period`` seconds of clean time (rule 4)."""
        return ratio(self.false_alarms * self.rate_period, self.clean_time)

    @property
    def far_interval(self) -> tuple[float, float] | None:
        """Exact (Poisson) 95 % interval of the FAR: 0 false alarms in 20 s of clean time
        says at most 665 per hour."""
        if self.clean_time <= 0:
            return None
        low, high = poisson_interval(self.false_alarms)
        scale = self.rate_period / self.clean_time
        return low * scale, high * scale

    @property
    def precision(self) -> float | None:
        return ratio(self.detected, self.detected + self.false_alarms)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def arl0(self) -> tuple[float, float, float] | None:
        """Mean clean seconds between false alarms, with its exact 95 % interval (rule 6)."""
        return arl0(self.clean_time, self.false_alarms) if self.clean_time > 0 else None

    @property
    def nab(self) -> float | None:
        return nab_normalised(self.nab_raw, self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every figure: ±∞ become the strings "inf"/"-inf", because None
        already means "undefined" (precision with no alerts) and must not read as ∞."""
        derived = (
            *("missed", "missed_rate", "recall_interval", "far", "far_interval"),
            *("precision", "f1", "arl0", "nab"),
        )
        out = _with(self, derived)
        per = ("missed", "missed_rate", "recall_interval")
        out["by"] = {
            dim: {v: _with(s, per) for v, s in values.items()} for dim, values in self.by.items()
        }
        return {str(k): _json_safe(v) for k, v in out.items()}

    def table(self) -> str:
        """Plain text for a terminal or a CI log: headline figures, episodes, strata."""
        return "\n".join([*_headline(self), "", *_episode_rows(self), "", *_strata_rows(self)])


def _with(obj: Summary, derived: Sequence[str]) -> dict[str, Any]:
    return dataclasses.asdict(obj) | {name: getattr(obj, name) for name in derived}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# -- plain-text table -------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _headline(c: Scorecard) -> list[str]:
    a = c.arl0 or (None, None, None)
    return [
        f"episodes {c.episodes}  detected {c.detected}  missed {c.missed}  "
        f"false alarms {c.false_alarms}  redundant {c.redundant}  "
        f"mismatched {c.mismatched}  ignored {c.ignored}",
        f"recall {_fmt(c.recall)}{_between(c.recall_interval)}  "
        f"missed-detection rate {_fmt(c.missed_rate)}  "
        f"precision {_fmt(c.precision)}  F1 {_fmt(c.f1)}",
        f"delay s: mean {_fmt(c.delay_mean)}  median {_fmt(c.delay_median)}  "
        f"p90 {_fmt(c.delay_p90)}  penalised mean {_fmt(c.delay_penalised_mean)}",
        f"FAR {_fmt(c.far)}{_between(c.far_interval)} per {c.rate_period:g} s over "
        f"{c.clean_time:.1f} s clean  "
        f"ARL0 {_fmt(a[0], 1)} s (95% {_fmt(a[1], 1)}..{_fmt(a[2], 1)})",
        f"NAB (standard profile) {_fmt(c.nab, 1)}",
    ]


def _between(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" (95% {_fmt(interval[0])}..{_fmt(interval[1])})"


def _episode_rows(c: Scorecard) -> list[str]:
    rows = [("start+s", "route", "fault", "type", "detected", "delay s", "redundant")]
    for r in c.results:
        ep, seen = r.episode, "yes" if r.detected else "MISSED"
        start = _fmt(ep.start - c.run[0], 1)
        rows.append((start, ep.route, ep.fault, ep.type, seen, _fmt(r.delay), str(r.redundant)))
    return _grid(rows)


def _strata_rows(c: Scorecard) -> list[str]:
    head = ("by", "value", "episodes", "detected", "recall", "95%", "mean delay s", "p90 delay s")
    rows = [head]
    for dim, values in c.by.items():
        for v, s in values.items():
            band = s.recall_interval
            shown = f"{_fmt(band[0], 2)}..{_fmt(band[1], 2)}" if band else "-"
            figures = (_fmt(s.recall), shown, _fmt(s.delay_mean), _fmt(s.delay_p90))
            rows.append((dim, v, str(s.episodes), str(s.detected), *figures))
    return _grid(rows)
