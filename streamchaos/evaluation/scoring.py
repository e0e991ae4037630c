"""Score drift and data-quality detectors against the injector's own ground truth.

``score`` applies the rules of ``docs/detector-scoring.md`` to episodes (``episodes``) and
alerts (``alerts``) and returns a ``Scorecard`` (``scorecard``); the formulas live in
``scoring_nab``. Pure: no Kafka, no HTTP, no clock.

>>> eps = [Episode("f", "drift", "r", start=10.0, end=20.0)]
>>> card = score(eps, [Alert(12.0)], max_delay=5.0, run_start=0.0, run_end=100.0)
>>> card.recall, card.delay_mean, card.false_alarms
(1.0, 2.0, 0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence

from streamchaos.evaluation.alerts import Alert
from streamchaos.evaluation.episodes import Episode, episode_order
from streamchaos.evaluation.scorecard import EpisodeResult, Scorecard, Summary
from streamchaos.evaluation.scoring_nab import Window, locate, nab_raw, quantile, ratio

STRATA = ("type", "fault", "route", "feature", "fraction", "severity")

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
    eps = sorted(episodes, key=episode_order)
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
        recall=ratio(len(delays), len(rows)),
        redundant=sum(r.redundant for r in rows),
        delay_mean=ratio(sum(delays), len(delays)),
        delay_median=quantile(delays, 0.5),
        delay_p90=quantile(delays, 0.9),
        delay_penalised_mean=ratio(sum(penalised), len(penalised)),
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
