"""``streamchaos watch``: a small reference detector, for the demo and for teams with none.

It keeps a reference window per numeric feature and runs a two-sample Kolmogorov–Smirnov
test (scipy) of a sliding window against it every ``step`` records; it also watches data
quality: null (or non-finite, or missing) rate per field, the share of categories never
seen in the reference, the undecodable rate and lateness. Each check is a trigger that
fires once when it goes bad and re-arms after ``rearm`` good checks, so a lasting
problem is one alert, not one per record. This module is the pure detector; the Kafka
loop lives in ``watch_runner.py``.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

DETECTOR = "streamchaos-watch"


@dataclass
class WatchSettings:
    numeric: list[str] | None = None  # None: every int/long/float/double field
    categorical: list[str] | None = None  # None: string/enum/boolean fields
    reference: int = 1000
    window: int = 500
    step: int = 100
    alpha: float = 1e-4
    null_jump: float = 0.02
    unseen_rate: float = 0.01
    z: float = 6.0
    undecodable_rate: float = 0.02
    lateness: float = 5.0
    rearm: int = 5
    max_categories: int = 50


@dataclass
class Trigger:
    """Fires on the transition to bad; re-arms after ``rearm`` consecutive good checks."""

    rearm: int
    firing: bool = False
    good: int = 0

    def update(self, bad: bool) -> bool:
        if bad:
            self.good = 0
            if not self.firing:
                self.firing = True
                return True
            return False
        self.good += 1
        if self.firing and self.good >= self.rearm:
            self.firing = False
        return False


@dataclass
class FieldState:
    reference: list[Any] = field(default_factory=list)
    ref_missing: int = 0
    ref_seen: int = 0
    window: deque[Any] = field(default_factory=deque)
    missing: deque[bool] = field(default_factory=deque)
    categories: Counter[Any] = field(default_factory=Counter)
    unseen: deque[bool] = field(default_factory=deque)


class Detector:
    def __init__(self, settings: WatchSettings | None = None) -> None:
        self.s = settings or WatchSettings()
        self.records = 0
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.fields: dict[str, FieldState] = {}
        self.undecodable: deque[bool] = deque(maxlen=self.s.window)
        self.late: deque[float] = deque(maxlen=self.s.window)
        self.triggers: dict[tuple[str, str], Trigger] = {}
        self.gauges: dict[tuple[str, str], float] = {}

    def configure(self, schema: Any) -> None:
        """Pick features from an Avro record schema unless given explicitly."""
        numeric, categorical = [], []
        for f in schema.get("fields", []) if isinstance(schema, dict) else []:
            t = f["type"]
            t = next((b for b in t if b != "null"), t) if isinstance(t, list) else t
            kind = t.get("type") if isinstance(t, dict) else t
            logical = t.get("logicalType") if isinstance(t, dict) else None
            if kind in ("int", "long", "float", "double") and not logical:
                numeric.append(f["name"])
            elif kind in ("string", "enum", "boolean"):
                categorical.append(f["name"])
        self.numeric = self.s.numeric if self.s.numeric is not None else numeric
        self.categorical = self.s.categorical if self.s.categorical is not None else categorical
        for name in [*self.numeric, *self.categorical]:
            self.fields.setdefault(
                name,
                FieldState(
                    window=deque(maxlen=self.s.window),
                    missing=deque(maxlen=self.s.window),
                    unseen=deque(maxlen=self.s.window),
                ),
            )

    def observe(self, value: dict[str, Any] | None, lateness: float, now: float) -> list[dict]:
        """One record (None: undecodable); returns the alerts this record raised."""
        self.records += 1
        self.undecodable.append(value is None)
        self.late.append(lateness)
        if value is not None:
            for name in self.numeric:
                self._numeric(name, value.get(name))
            for name in self.categorical:
                self._categorical(name, value.get(name))
        if self.records % self.s.step:
            return []
        return self._check(now)

    def _numeric(self, name: str, x: Any) -> None:
        st = self.fields[name]
        ok = isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        if st.ref_seen < self.s.reference:
            st.ref_seen += 1
            st.ref_missing += not ok
            if ok:
                st.reference.append(float(x))
            return
        st.missing.append(not ok)
        if ok:
            st.window.append(float(x))

    def _categorical(self, name: str, x: Any) -> None:
        st = self.fields[name]
        if st.ref_seen < self.s.reference:
            st.ref_seen += 1
            st.ref_missing += x is None
            if x is not None:
                st.categories[x] += 1
            return
        st.missing.append(x is None)
        if x is not None:
            st.unseen.append(x not in st.categories)

    def _check(self, now: float) -> list[dict]:
        alerts: list[dict] = []
        for name in self.numeric:
            st = self.fields[name]
            if len(st.window) >= self.s.window and len(st.reference) >= 20:
                p = float(ks_2samp(st.reference, list(st.window)).pvalue)
                self.gauges[("ks_pvalue", name)] = p
                self._fire(alerts, "FeatureDrift", name, p < self.s.alpha, p, now)
            self._missing(alerts, name, st, now)
        for name in self.categorical:
            st = self.fields[name]
            if len(st.categories) > self.s.max_categories:
                continue  # an id, not a category
            rate = _rate(st.unseen)
            self.gauges[("unseen_rate", name)] = rate
            # Good-Turing: the reference's singletons estimate the mass of unseen categories
            seen = sum(st.categories.values())
            base = sum(1 for c in st.categories.values() if c == 1) / seen if seen else 0.0
            bad = _exceeds(rate, base, len(st.unseen), self.s.unseen_rate, self.s.z)
            self._fire(alerts, "UnseenCategory", name, bad, rate, now)
            self._missing(alerts, name, st, now)
        rate = _rate(self.undecodable)
        self.gauges[("undecodable_rate", "")] = rate
        self._fire(alerts, "Undecodable", "", rate > self.s.undecodable_rate, rate, now)
        p90 = float(np.percentile(self.late, 90)) if self.late else 0.0
        self.gauges[("lateness_p90_seconds", "")] = p90
        self._fire(alerts, "Lateness", "", p90 > self.s.lateness, p90, now)
        return alerts

    def _missing(self, alerts: list[dict], name: str, st: FieldState, now: float) -> None:
        if len(st.missing) < self.s.step:
            return
        base = st.ref_missing / st.ref_seen if st.ref_seen else 0.0
        rate = _rate(st.missing)
        self.gauges[("null_rate", name)] = rate
        bad = _exceeds(rate, base, len(st.missing), self.s.null_jump, self.s.z)
        self._fire(alerts, "NullRate", name, bad, rate, now)

    def _fire(
        self, alerts: list[dict], kind: str, name: str, bad: bool, value: float, now: float
    ) -> None:
        trig = self.triggers.setdefault((kind, name), Trigger(self.s.rearm))
        self.gauges[("alerting", f"{kind}:{name}")] = 1.0 if trig.firing or bad else 0.0
        if trig.update(bad):
            labels = {"alertname": kind, "detector": DETECTOR}
            if name:
                labels["feature"] = name
            alerts.append({"at": now, "labels": labels, "value": value, "records": self.records})


def _exceeds(rate: float, base: float, n: int, margin: float, z: float) -> bool:
    """``rate`` is above ``base`` by more than ``margin`` and by more than chance (z-test)."""
    if n == 0:
        return False
    p = min(max(base, 1.0 / n), 1 - 1.0 / n)
    return rate - base > margin and (rate - base) / math.sqrt(p * (1 - p) / n) > z


def _rate(flags: deque[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0
