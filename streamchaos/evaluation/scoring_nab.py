"""The scoring arithmetic: NAB's standard-profile score, exact Poisson intervals, quantiles.

Kept apart from ``streamchaos.evaluation.scoring`` so the formulas of
``docs/detector-scoring.md`` can be read, and checked against NAB's scorer and chi-square
tables, without the bookkeeping around them. Pure standard library: the exact chi-square
quantiles need no scipy.

>>> nab_raw([(4.0, 6.0)], [4.0])  # NAB rows 4..5 of width 2, detected at the first row
1.0
>>> [round(x, 4) for x in poisson_interval(1)]
[0.0253, 5.5716]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

Window = tuple[float, float]  # [lo, hi) in seconds


@dataclass(frozen=True)
class NabProfile:
    """NAB's application profile: weights of a true positive, false positive, false negative."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = NabProfile()


def scaled_sigmoid(y: float) -> float:
    """σ(y) = 2/(1 + e^{5y}) − 1: ≈ +1 early in a window, 0 at its right edge, → −1 after.

    Beyond y = 3 NAB's scorer returns exactly −1, which also keeps ``exp`` from overflowing.
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def locate(windows: Sequence[Window], t: float) -> int | None:
    """Index of the window [lo, hi) holding ``t``; windows are sorted and disjoint."""
    k = bisect.bisect_right(windows, (t, math.inf)) - 1
    if k >= 0 and windows[k][0] <= t < windows[k][1]:
        return k
    return None


def nab_raw(
    windows: Sequence[Window],
    alerts: Iterable[float],
    *,
    step: float = 1.0,
    profile: NabProfile = STANDARD,
) -> float:
    """NAB's unnormalised score S: earliest detection per window, −A_FN per empty window,
    one weighted false positive per alert outside every window.

    NAB counts in data rows; here a row is ``step`` seconds, so the window [lo, hi) spans rows
    lo/step … hi/step − 1: width W = (hi − lo)/step and right edge r = hi/step − 1.
    """
    firsts: dict[int, float] = {}
    total = 0.0
    for t in sorted(alerts):
        k = locate(windows, t)
        if k is None:
            total += _false_positive(windows, t, step, profile)
        elif k not in firsts:
            firsts[k] = t
    for k, (lo, hi) in enumerate(windows):
        total += _true_positive(lo, hi, firsts[k], profile) if k in firsts else -profile.fn
    return total


def _true_positive(lo: float, hi: float, t: float, profile: NabProfile) -> float:
    """σ(y)·A_TP/σ(−1) with y = −(r − i + 1)/W, which in seconds is −(hi − t)/(hi − lo):
    written that way it is exactly −1 (score exactly A_TP) at the window's start."""
    y = -(hi - t) / (hi - lo)
    return scaled_sigmoid(y) * profile.tp / scaled_sigmoid(-1.0)


def _false_positive(windows: Sequence[Window], t: float, step: float, p: NabProfile) -> float:
    """σ(y)·A_FP with y = |r_prev − i|/(W_prev − 1), the distance past the previous window
    in units of its width: a near miss costs little, a distant false alarm costs A_FP.
    Before the first window (or after a window at most one row wide, where NAB's
    denominator vanishes) the cost is the full −A_FP."""
    k = bisect.bisect_right(windows, (t, math.inf)) - 1
    if k < 0:
        return -p.fp
    lo, hi = windows[k]
    span = hi - lo - step  # (W_prev − 1) rows, in seconds
    if span <= 0:
        return -p.fp
    return scaled_sigmoid(abs(hi - step - t) / span) * p.fp


def nab_normalised(raw: float, episodes: int, profile: NabProfile = STANDARD) -> float | None:
    """100·(S − S_null)/(S_perfect − S_null): 0 for a silent detector, 100 for a perfect one.
    Undefined (None) without episodes."""
    if episodes == 0:
        return None
    null, perfect = -episodes * profile.fn, episodes * profile.tp
    return 100.0 * (raw - null) / (perfect - null)


def _gamma_pq(a: float, x: float) -> tuple[float, float]:
    """Regularised incomplete gamma functions (P, Q), P + Q = 1, for a > 0.

    Series below x = a + 1, Lentz's continued fraction above (Numerical Recipes §6.2): each
    converges fast in its region, and returning both halves avoids cancellation in 1 − P.
    """
    if x <= 0:
        return 0.0, 1.0
    front = math.exp(a * math.log(x) - x - math.lgamma(a))
    tiny, eps = 1e-300, 1e-16
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * eps:
            n += 1
            term *= x / n
            total += term
        return total * front, 1.0 - total * front
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h, i = d, 0
    while True:
        i += 1
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < eps:
            return 1.0 - h * front, h * front


def _rate_where(a: float, target: float) -> float:
    """λ with P(a, λ) = target, by bisection (P rises monotonically from 0 to 1 in λ)."""
    lo, hi = 0.0, a + 20.0 + 10.0 * math.sqrt(a)
    while _gamma_pq(a, hi)[0] < target:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if _gamma_pq(a, mid)[0] < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return (lo + hi) / 2


def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean after observing ``count`` events.

    Bounds are χ²(alpha/2; 2c)/2 and χ²(1 − alpha/2; 2c + 2)/2, found via the identity
    P(X ≥ c; λ) = P(c, λ) (regularised gamma), so no chi-square table is needed.
    The lower bound is 0 when nothing was observed.
    """
    if count < 0 or not 0 < confidence < 1:
        raise ValueError("count must be >= 0 and confidence in (0, 1)")
    alpha = 1 - confidence
    lower = 0.0 if count == 0 else _rate_where(count, alpha / 2)
    return lower, _rate_where(count + 1, 1 - alpha / 2)


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a proportion (95 % by default): unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0 or n successes.

    >>> [round(x, 4) for x in wilson(81, 263)]  # Newcombe (1998), Table I
    [0.2553, 0.3662]
    """
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials and trials > 0")
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def arl0(n: float, false_alarms: int) -> tuple[float, float, float]:
    """ARL0 ≈ N/FA with the exact Poisson 95 % interval [2N/χ²₀.₉₇₅(2FA+2), 2N/χ²₀.₀₂₅(2FA)].

    N is the run length in whatever unit the caller counts (records or seconds). With no
    false alarm the point estimate and the upper bound are ∞; the lower bound stays finite.

    >>> [round(x, 1) for x in arl0(1000.0, 5)]
    [200.0, 85.7, 616.0]
    """
    rate_lo, rate_hi = poisson_interval(false_alarms)
    point = n / false_alarms if false_alarms else math.inf
    return point, n / rate_hi, (n / rate_lo if rate_lo > 0 else math.inf)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation quantile (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    below = math.floor(pos)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (pos - below)


def ratio(num: float, den: float) -> float | None:
    """``num / den``, or None (undefined) when ``den`` is 0."""
    return num / den if den else None


def is_number(value: Any) -> TypeGuard[float]:
    """A finite int or float, and not a bool (JSON's ``true`` is no number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
