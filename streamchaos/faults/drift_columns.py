"""The drift of a feature's column for the ``drift`` fault (``faults.drift``).

Numeric features are scaled, shifted and noised (``moved``), categorical ones remapped,
given a new category or mixed, and any feature nulled, at an intensity; every draw is a pure
function of (record key, feature, purpose), so a record drifts the same way alone or in any
batch. Kept apart from the fault module, which holds the config and the orchestration; it
defines no fault, so fault discovery passes it by.
"""

from __future__ import annotations

import bisect
import math
from itertools import accumulate
from typing import Any

import numpy as np

from streamchaos.faults.base import RunningStats
from streamchaos.faults.drift_features import FeatureDrift
from streamchaos.faults.drift_rows import KEEP
from streamchaos.selection import keyed_uniforms, splitmix


def compute(
    features: dict[str, FeatureDrift],
    stats: dict[str, RunningStats],
    warmup: int,
    columns: list[list[Any]],
    keys: Any,
    i: float,
) -> list[list[Any]]:
    """New values per feature and record (``KEEP``: unchanged). ``keys``: a uint64
    array, or None when no feature draws. ``stats``: each numeric feature's warm-up
    statistics, created and fed here."""
    news = []
    for f, (name, spec) in enumerate(features.items()):
        old = columns[f]
        new: list[Any] = [KEEP] * len(old)
        alive = [j for j, v in enumerate(old) if v is not None]
        if spec.null_rate is not None:
            nulled = _draws(keys, f, "null") < spec.null_rate * i
            for j in alive:
                if nulled[j]:
                    new[j] = None
            alive = [j for j in alive if not nulled[j]]
        if len(alive) == len(old):  # no nulls: the feature's column as it is
            values, live = old, keys
        else:
            values = [old[j] for j in alive]
            live = keys[alive] if keys is not None else None
        if alive:
            if spec.numeric:
                feature = stats.setdefault(name, RunningStats(warmup))
                changed = _numeric(spec, feature, warmup, values, live, f, i)
            else:
                changed = _categorical(spec, values, live, f, i)
            if values is old:
                new = changed
            else:
                for j, value in zip(alive, changed, strict=True):
                    new[j] = value
        news.append(new)
    return news


def _numeric(
    spec: FeatureDrift,
    stats: RunningStats,
    warmup: int,
    values: list[Any],
    keys: np.ndarray,
    f: int,
    i: float,
) -> list[Any]:
    x = np.array(values, dtype=np.float64)
    warming = np.zeros(len(values), dtype=bool)
    k = 0
    while k < len(values) and stats.n < warmup:  # the warm-up, in order
        stats.add(float(x[k]))
        warming[k] = stats.n < warmup
        k += 1
    y = moved(spec, stats, x, keys, f, i)
    if spec.unit == "sigma" or spec.scale is not None:
        y[warming] = x[warming]  # no reference yet: warming records pass unchanged
    out: list[Any] = y.tolist()  # Python floats; an integer feature stays an integer
    for k, v in enumerate(values):
        if isinstance(v, int):
            out[k] = round(out[k])
    return out


def _categorical(
    spec: FeatureDrift, values: list[Any], keys: np.ndarray, f: int, i: float
) -> list[Any]:
    remap = _draws(keys, f, "remap") if spec.remap is not None else None
    novel = _draws(keys, f, "new") if spec.new_category is not None else None
    mix = _draws(keys, f, "mix") if spec.mix is not None else None
    pick = _draws(keys, f, "pick") if spec.mix is not None else None
    to = spec.remap or {}
    targets = list(spec.mix or ())  # mix: cumulative frequencies, worked out once
    edges = list(accumulate((spec.mix or {}).values()))
    out: list[Any] = [KEEP] * len(values)
    for k, v in enumerate(values):
        if remap is not None and v in to and remap[k] < spec.p * i:
            out[k] = to[v]
        elif novel is not None and novel[k] < spec.rate * i:
            out[k] = spec.new_category
        elif mix is not None and pick is not None and mix[k] < i:
            out[k] = targets[min(bisect.bisect_right(edges, pick[k]), len(targets) - 1)]
    return out


def moved(
    spec: FeatureDrift, stats: RunningStats, x: np.ndarray, keys: Any, f: int, i: float
) -> np.ndarray:
    """A numeric feature's column drifted at intensity ``i``: scale about the mean, then
    shift, then noise (units of σ when ``unit: sigma``). ``x`` is left as it is."""
    unit = stats.sigma if spec.unit == "sigma" else 1.0
    y = x
    if spec.scale is not None:
        y = stats.mean + (y - stats.mean) * (1 + (spec.scale - 1) * i)
    if spec.shift is not None:
        y = y + spec.shift * unit * i
    if spec.noise is not None:
        y = y + _gauss(keys, f) * (spec.noise * unit * i)
    return y


def moved_rows(
    features: dict[str, FeatureDrift],
    stats: dict[str, RunningStats],
    olds: list[list[Any]],
    keys: Any,
    i: float,
) -> list[list[Any]]:
    """``moved`` for rows of every feature past its warm-up, as one (records × features)
    array."""
    y = np.array(olds, dtype=np.float64)
    for f, (name, spec) in enumerate(features.items()):
        y[:, f] = moved(spec, stats[name], y[:, f], keys, f, i)
    news: list[list[Any]] = y.tolist()
    return news


_SALTS: dict[tuple[int, str], int] = {}


def _draws(keys: np.ndarray, feature: int, purpose: str) -> np.ndarray:
    """A uniform draw per record for one (feature, purpose): independent of the batch."""
    salt = _SALTS.get((feature, purpose))
    if salt is None:
        code = sum(ord(c) << (8 * n) for n, c in enumerate(purpose[:6]))
        salt = _SALTS[(feature, purpose)] = splitmix(feature << 48 ^ code)
    return keyed_uniforms(keys, salt)


def _gauss(keys: np.ndarray, feature: int) -> np.ndarray:
    """Standard normal draws (Box-Muller) from two uniforms per record."""
    u1, u2 = _draws(keys, feature, "gauss1"), _draws(keys, feature, "gauss2")
    gauss: np.ndarray = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)
    return gauss
