"""Score drift and data-quality detectors against the injector's own ground truth.

Ground truth is the ledger's episode entries, with exact times — never Prometheus series,
which are quantised to the evaluation interval. Alerts come from JSON Lines (or a Kafka topic
of the same JSON objects: ``alert_from_dict``) or Prometheus's ``ALERTS`` over a range. The
rules are those of ``docs/detector-scoring.md``; the arithmetic lives in ``scoring_nab``.
Pure: no Kafka, no HTTP, no clock.

>>> eps = [Episode("f", "drift", "r", start=10.0, end=20.0)]
>>> card = score(eps, [Alert(12.0)], max_delay=5.0, run_start=0.0, run_end=100.0)
>>> card.recall, card.delay_mean, card.false_alarms
(1.0, 2.0, 0)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeGuard

from streamchaos.errors import StreamChaosError
from streamchaos.scoring_nab import Window, arl0, locate, nab_normalised, nab_raw, quantile

FEATURE_KEYS = ("field", "fields", "feature", "features")
SEVERITY_KEYS = ("severity", "shift", "magnitude", "scale", "mode", "delay")
STRATA = ("type", "fault", "route", "feature", "fraction", "severity")
MS_LOOKING = 1e11  # epoch seconds past the year 5000: surely milliseconds under the wrong key


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


@dataclass(frozen=True)
class Alert:
    """One detector alarm at ``at`` epoch seconds; labels are kept for matching and reports."""

    at: float
    labels: dict[str, Any] = field(default_factory=dict)


# -- ground truth ---------------------------------------------------------------------------


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
    for i, entry in enumerate(entries):
        kind, at_ms = entry.get("kind"), entry.get("at")
        if not _is_number(at_ms):
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
    return sorted(out, key=_order)


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
        fraction=float(fraction) if _is_number(fraction) else None,
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


def _order(ep: Episode) -> tuple[float, float, str, str]:
    return ep.start, ep.end, ep.route, ep.fault


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- alerts -----------------------------------------------------------------------------------


def alert_from_dict(obj: Any) -> Alert:
    """``{"at": epoch s}`` or ``{"at_ms": epoch ms}``, optional ``"labels": {...}``.

    An ``at`` that can only be milliseconds is refused rather than read as the year 55000:
    a unit slip must not silently turn every alert into a false alarm.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "at" in obj:
        at = obj["at"]
        if not _is_number(at) or abs(at) >= MS_LOOKING:
            raise ValueError(f"'at' must be finite epoch seconds (else use 'at_ms'), got {at!r}")
    elif "at_ms" in obj:
        if not _is_number(obj["at_ms"]):
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
    try:
        series = [_firing(s) for s in data.get("result", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamChaosError(f"malformed Prometheus answer: {exc!r}") from exc
    firing = [(labels, times) for labels, times in series if times]
    gaps = [b - a for _, times in firing for a, b in pairwise(times) if b > a]
    step = step if step is not None else min(gaps, default=None)
    alerts = [
        Alert(t, dict(labels))
        for labels, times in firing
        for prev, t in zip([None, *times], times, strict=False)
        if prev is None or step is None or t - prev > 1.5 * step
    ]
    return sorted(alerts, key=lambda a: a.at)


def _firing(series: dict[str, Any]) -> tuple[dict[str, str], list[float]]:
    labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
    if labels.get("alertstate", "firing") != "firing":
        return labels, []
    return labels, sorted(float(t) for t, v in series["values"] if float(v) != 0)


# -- scorecard --------------------------------------------------------------------------------


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
        return _ratio(self.false_alarms * self.rate_period, self.clean_time)

    @property
    def precision(self) -> float | None:
        return _ratio(self.detected, self.detected + self.false_alarms)

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
        derived = ("missed", "missed_rate", "far", "precision", "f1", "arl0", "nab")
        out = _with(self, derived)
        out["by"] = {
            dim: {v: _with(s, ("missed", "missed_rate")) for v, s in values.items()}
            for dim, values in self.by.items()
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


# -- scoring ----------------------------------------------------------------------------------

Match = Callable[[Episode, Alert], bool]


def score(
    episodes: Iterable[Episode],
    alerts: Iterable[Alert],
    *,
    max_delay: float,
    early: float = 0.0,
    warmup: float = 0.0,
    rate_period: float = 3600.0,
    run_start: float | None = None,
    run_end: float | None = None,
    match: Match | None = None,
    nab_step: float = 1.0,
) -> Scorecard:
    """Score ``alerts`` against ``episodes`` by docs/detector-scoring.md; all in seconds.

    ``max_delay`` is D, ``early`` ε, ``warmup`` P counted from the run's start, and
    ``rate_period`` R. The run spans ``run_start``..``run_end``, by default the earliest and
    latest window edge or alert; alerts before the warm-up or after the run are ``ignored``
    (neither hits nor false alarms). With ``match`` an alert detects an episode only if
    ``match(episode, alert)``; one inside a window it does not match is ``mismatched``:
    it is not outside every window, so rule 4 does not make it a false alarm either.
    ``nab_step`` is the width of one NAB row, the unit of NAB's "W − 1".
    """
    if min(max_delay, early, warmup) < 0 or rate_period <= 0 or nab_step <= 0:
        raise ValueError("max_delay, early, warmup must be >= 0; rate_period, nab_step > 0")
    eps = sorted(episodes, key=_order)
    windows = _windows(eps, max_delay, early)
    ordered = sorted(alerts, key=lambda a: a.at)
    edges = [t for w in windows for t in w] + [a.at for a in ordered]
    start = run_start if run_start is not None else min(edges, default=0.0)
    end = run_end if run_end is not None else max(edges, default=start)
    scored = [a for a in ordered if start + warmup <= a.at <= end]
    first, redundant, false_alarms, mismatched = _assign(eps, windows, scored, match)
    results = tuple(
        EpisodeResult(ep, w, f is not None, f, None if f is None else f.at - ep.start, r)
        for ep, w, f, r in zip(eps, windows, first, redundant, strict=True)
    )
    hits = [f.at for f in first if f is not None]
    return Scorecard(
        **dataclasses.asdict(_summary(results)),
        false_alarms=len(false_alarms),
        mismatched=mismatched,
        ignored=len(ordered) - len(scored),
        run=(start, end),
        clean_time=_clean_time(windows, start + warmup, end),
        rate_period=rate_period,
        nab_raw=nab_raw(windows, hits + [a.at for a in false_alarms], step=nab_step),
        false_alarm_at=tuple(a.at for a in false_alarms),
        results=results,
        by=_strata(results),
    )


def _windows(eps: Sequence[Episode], max_delay: float, early: float) -> list[Window]:
    """Rule 1: W_k = [s_k − ε, min(e_k + D, s_{k+1} − ε)). Truncating at the next start
    keeps windows disjoint, so one alert is never credited twice; an episode starting with
    the next one gets an empty window (score such faults apart, e.g. one route at a time)."""
    nexts = [ep.start - early for ep in eps[1:]] + [math.inf]
    return [
        (ep.start - early, max(ep.start - early, min(ep.end + max_delay, nxt)))
        for ep, nxt in zip(eps, nexts, strict=False)  # no episodes: nexts is just [inf]
    ]


def _assign(
    eps: Sequence[Episode], windows: Sequence[Window], alerts: Sequence[Alert], match: Match | None
) -> tuple[list[Alert | None], list[int], list[Alert], int]:
    """Rules 2–4: each alert is a first detection, redundant, a false alarm or mismatched."""
    first: list[Alert | None] = [None] * len(eps)
    redundant = [0] * len(eps)
    false_alarms: list[Alert] = []
    mismatched = 0
    for alert in alerts:
        k = locate(windows, alert.at)
        if k is None:
            false_alarms.append(alert)
        elif match is not None and not match(eps[k], alert):
            mismatched += 1
        elif first[k] is None:
            first[k] = alert
        else:
            redundant[k] += 1
    return first, redundant, false_alarms, mismatched


def _clean_time(windows: Sequence[Window], since: float, until: float) -> float:
    """Rule 4's denominator: [since, until] outside every window (windows are disjoint)."""
    covered = sum(max(0.0, min(hi, until) - max(lo, since)) for lo, hi in windows)
    return max(0.0, until - since - covered)


def _summary(rows: Sequence[EpisodeResult]) -> Summary:
    """Rules 2, 3 and 5 over some episodes. In the penalised mean a miss costs
    end(W_k) − s_k (never below 0: an empty window is a miss, not a gain)."""
    delays = [r.delay for r in rows if r.delay is not None]
    penalised = [
        r.delay if r.delay is not None else max(0.0, r.window[1] - r.episode.start) for r in rows
    ]
    return Summary(
        episodes=len(rows),
        detected=len(delays),
        recall=_ratio(len(delays), len(rows)),
        redundant=sum(r.redundant for r in rows),
        delay_mean=_ratio(sum(delays), len(delays)),
        delay_median=quantile(delays, 0.5),
        delay_p90=quantile(delays, 0.9),
        delay_penalised_mean=_ratio(sum(penalised), len(penalised)),
    )


def _strata(rows: Sequence[EpisodeResult]) -> dict[str, dict[str, Summary]]:
    """Rule 8: a Summary per value of each stratum. An episode on several features counts
    under each; a missing value is "-". Fractions sort numerically, so collapse shows."""
    groups: dict[str, dict[str, list[EpisodeResult]]] = {dim: {} for dim in STRATA}
    for row in rows:
        for dim in STRATA:
            value = getattr(row.episode, "features" if dim == "feature" else dim)
            values = value if dim == "feature" else (value,)
            for v in values or ("-",):
                key = "-" if v is None else v if isinstance(v, str) else f"{v:g}"
                groups[dim].setdefault(key, []).append(row)
    return {
        dim: {v: _summary(members[v]) for v in sorted(members, key=_numeric_first)}
        for dim, members in groups.items()
    }


def _numeric_first(value: str) -> tuple[int, float, str]:
    if value == "-":
        return 2, 0.0, value
    try:
        return 0, float(value), value
    except ValueError:
        return 1, 0.0, value


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


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
        f"recall {_fmt(c.recall)}  missed-detection rate {_fmt(c.missed_rate)}  "
        f"precision {_fmt(c.precision)}  F1 {_fmt(c.f1)}",
        f"delay s: mean {_fmt(c.delay_mean)}  median {_fmt(c.delay_median)}  "
        f"p90 {_fmt(c.delay_p90)}  penalised mean {_fmt(c.delay_penalised_mean)}",
        f"FAR {_fmt(c.far)} per {c.rate_period:g} s over {c.clean_time:.1f} s clean  "
        f"ARL0 {_fmt(a[0], 1)} s (95% {_fmt(a[1], 1)}..{_fmt(a[2], 1)})",
        f"NAB (standard profile) {_fmt(c.nab, 1)}",
    ]


def _episode_rows(c: Scorecard) -> list[str]:
    rows = [("start+s", "route", "fault", "type", "detected", "delay s", "redundant")]
    for r in c.results:
        ep, seen = r.episode, "yes" if r.detected else "MISSED"
        start = _fmt(ep.start - c.run[0], 1)
        rows.append((start, ep.route, ep.fault, ep.type, seen, _fmt(r.delay), str(r.redundant)))
    return _grid(rows)


def _strata_rows(c: Scorecard) -> list[str]:
    rows = [("by", "value", "episodes", "detected", "recall", "mean delay s", "p90 delay s")]
    for dim, values in c.by.items():
        for v, s in values.items():
            figures = (_fmt(s.recall), _fmt(s.delay_mean), _fmt(s.delay_p90))
            rows.append((dim, v, str(s.episodes), str(s.detected), *figures))
    return _grid(rows)
