"""label_delay: each class's labels held by its own delay, time-scaled; others pass."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from streamchaos.codec import JsonCodec
from streamchaos.config import config_from_dict
from streamchaos.errors import ConfigError
from streamchaos.faults.base import FaultContext
from streamchaos.faults.label_delay import LabelDelay, LabelDelayConfig
from streamchaos.faults.picks import picks_of
from streamchaos.record import Record

CODEC = JsonCodec()


def fault(**cfg):
    f = LabelDelay(LabelDelayConfig(**cfg), random.Random(1))
    f.ctx = FaultContext(CODEC, "labels", "labels.shadow")
    errors = []
    f.ctx.error = lambda name, reason, message: errors.append(reason)
    f.errors = errors
    return f


def labels(*values):
    return [
        Record("labels", 0, i, b"k%d" % i, json.dumps(v).encode()) for i, v in enumerate(values)
    ]


def test_yaml_class_names_become_text():
    cfg = LabelDelayConfig.model_validate(
        yaml.safe_load("label_field: y\nclasses: {true: {delay: 1d}, fraud: {delay: 2d}}")
    )
    assert set(cfg.classes) == {"true", "fraud"} and cfg.classes["true"].delay == 86400.0
    numbered = yaml.safe_load("label_field: y\nclasses: {1: {delay: 2d}, 0.5: {delay: 1}}")
    assert set(LabelDelayConfig.model_validate(numbered).classes) == {"1", "0.5"}


def test_each_class_gets_its_delay_scaled_and_unlisted_classes_pass():
    f = fault(
        label_field="y",
        classes={"true": {"distribution": "uniform", "min": "30d", "max": "90d"}},
        time_scale=1e-5,
    )
    actions = f.act(picks_of(labels({"y": True}, {"y": False}, {"y": True}), codec=CODEC), 0.0)
    assert [repr(a) for a in actions] == ["HOLD", "KEEP", "HOLD"]
    released = f.due(1e9)  # in the order they come due
    assert {r.item.record.offset for r in released} == {0, 2}
    delays = [r.injection.detail["delay_s"] for r in released]
    assert delays == sorted(delays)
    for r in released:
        d = r.injection.detail
        assert d["class"] == "true" and 30 * 86400 <= d["delay_s"] <= 90 * 86400
        assert d["scaled_delay_ms"] == pytest.approx(d["delay_s"] * 1e-5 * 1000, abs=1e-3)


def test_nothing_is_due_before_its_scaled_delay_and_a_default_covers_other_classes():
    f = fault(
        label_field="y", classes={"1": {"delay": "10s"}}, default={"delay": "20s"}, time_scale=0.5
    )
    f.act(picks_of(labels({"y": 1}, {"y": 0}), codec=CODEC), 0.0)
    assert f.due(4.99) == []
    assert [r.item.record.offset for r in f.due(5.0)] == [0]
    assert [r.item.record.offset for r in f.due(10.0)] == [1]


def test_a_record_without_the_label_passes_and_is_reported():
    f = fault(label_field="y", classes={"true": {"delay": 1}})
    [action] = f.act(picks_of(labels({"x": 1}), codec=CODEC), 0.0)
    assert repr(action) == "KEEP" and f.errors == ["unknown_field"]


def test_refusals_name_the_field():
    with pytest.raises(ValueError, match="classes: give at least one class"):
        LabelDelayConfig(label_field="y", classes={})
    with pytest.raises(ValueError, match="fixed: give delay"):
        LabelDelayConfig(label_field="y", classes={"a": {}})
    with pytest.raises(ValueError, match="uniform: give min and max"):
        LabelDelayConfig(label_field="y", classes={"a": {"distribution": "uniform", "delay": 5}})
    with pytest.raises(ValueError, match="min must be <= max"):
        LabelDelayConfig(
            label_field="y", classes={"a": {"distribution": "uniform", "min": 5, "max": 1}}
        )
    raw = {
        "experiment": "e",
        "routes": [
            {
                "source": "labels",
                "shadow": "labels.shadow",
                "faults": [
                    {"type": "label_delay", "label_field": "y", "classes": {"a": {"delay": 1}}}
                ],
            }
        ],
    }
    with pytest.raises(ConfigError, match="label_delay reads record values"):
        config_from_dict(raw, env={})
