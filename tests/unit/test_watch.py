"""The reference detector: drift and data-quality checks, one alert per problem."""

from __future__ import annotations

import math
import random

from streamchaos.evaluation.watch import Detector, Trigger, WatchSettings

SCHEMA = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "x", "type": "double"},
        {"name": "c", "type": "string"},
        {"name": "n", "type": ["null", "string"]},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def feed(det, n, rng, *, shift=0.0, c=None, null=0.0, late=0.0, broken=0.0, t0=0.0):
    alerts = []
    for i in range(n):
        if rng.random() < broken:
            value = None
        else:
            value = {
                "x": rng.gauss(0, 1) + shift,
                "c": c or rng.choice("abc"),
                "n": None if rng.random() < null else "v",
                "ts": 0,
            }
        alerts += det.observe(value, late, t0 + i)
    return [a["labels"]["alertname"] + ":" + a["labels"].get("feature", "") for a in alerts]


def detector():
    det = Detector(WatchSettings(reference=1000, window=500, step=100))
    det.configure(SCHEMA)
    return det


def test_features_from_schema():
    det = detector()
    assert det.numeric == ["x"] and det.categorical == ["c", "n"]


def test_stationary_stream_raises_nothing():
    det, rng = detector(), random.Random(1)
    assert feed(det, 20_000, rng) == []


def test_two_sigma_shift_is_one_alert_then_rearms():
    det, rng = detector(), random.Random(2)
    feed(det, 2000, rng)
    assert feed(det, 2000, rng, shift=2.0) == ["FeatureDrift:x"]
    assert feed(det, 3000, rng) == []
    assert feed(det, 2000, rng, shift=2.0) == ["FeatureDrift:x"]


def test_data_quality_checks():
    det, rng = detector(), random.Random(3)
    feed(det, 2000, rng)
    assert "NullRate:n" in feed(det, 1000, rng, null=0.3)
    assert "UnseenCategory:c" in feed(det, 1000, rng, c="zzz")
    assert "Undecodable:" in feed(det, 1000, rng, broken=0.1)
    assert "Lateness:" in feed(det, 1000, rng, late=30.0)
    assert det.gauges[("lateness_p90_seconds", "")] == 30.0


def test_non_finite_values_count_as_missing():
    det, rng = detector(), random.Random(4)
    feed(det, 2000, rng)
    alerts = []
    for i in range(1000):
        alerts += det.observe({"x": math.nan, "c": "a", "n": "v", "ts": 0}, 0.0, i)
    assert any(
        a["labels"] == {"alertname": "NullRate", "detector": "streamchaos-watch", "feature": "x"}
        for a in alerts
    )


def test_trigger_fires_once_and_rearms_after_good_checks():
    t = Trigger(rearm=2)
    assert [t.update(b) for b in (True, True, False, True, False, False, True)] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
