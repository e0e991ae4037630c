"""``leak``: the leaked feature correlates with the label at the configured level."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from streamchaos.codec import AvroCodec, JsonCodec, ParsedSchema
from streamchaos.faults.leak import Leak, LeakConfig
from streamchaos.record import Record
from tests.faultkit import apply, attach
from tests.schemas import avro_record


def records(n, seed=3):
    rng = random.Random(seed)
    return [
        Record(
            "src",
            0,
            i,
            None,
            json.dumps({"score": rng.gauss(0, 1), "fraud": rng.random() < 0.3}).encode(),
        )
        for i in range(n)
    ]


def leaked(n=5000, errors=None, **cfg):
    fault = attach(
        Leak(LeakConfig(feature="score", label_field="fraud", **cfg), random.Random(0)),
        JsonCodec(),
        errors,
    )
    outs = apply(fault, records(n))
    return [json.loads(o.source.value) for o in outs], [json.loads(o.record.value) for o in outs]


def correlation(rows):
    return float(np.corrcoef([r["score"] for r in rows], [float(r["fraud"]) for r in rows])[0, 1])


@pytest.mark.parametrize("target", [0.3, 0.6, 0.8, 0.95])
def test_the_correlation_rises_to_the_configured_level(target):
    before, after = leaked(correlation=target)
    assert abs(correlation(before)) < 0.05  # the features were independent of the label
    assert correlation(after) == pytest.approx(target, abs=0.025)
    assert leaked(correlation=target)[1] == after  # seeded per record: the same again


def test_a_warm_up_passes_the_first_records():
    before, after = leaked(n=100, warmup=30, correlation=0.5)
    assert after[:30] == before[:30] and all(
        a != b for a, b in zip(after[30:], before[30:], strict=True)
    )


def test_correlation_one_is_the_label_itself_and_lag_leaks_an_earlier_one():
    before, after = leaked(n=50, warmup=0)
    assert [r["score"] for r in after] == [float(r["fraud"]) for r in before]
    before, after = leaked(n=50, lag=3, warmup=0)
    assert after[:3] == before[:3]  # no 3 earlier labels yet: passed as they came
    assert [r["score"] for r in after[3:]] == [float(r["fraud"]) for r in before[:-3]]


def test_an_avro_int_feature_gets_it_rounded_and_a_text_label_is_reported():
    schema = ParsedSchema.of(avro_record("Tx", score="long", fraud="boolean"))
    codec = AvroCodec(None, schema)
    cfg = LeakConfig(feature="score", label_field="fraud", warmup=0)
    fault = attach(Leak(cfg, random.Random(0)), codec)
    rec = Record("src", 0, 0, None, codec.encode({"score": 5, "fraud": True}, schema, None))
    [out] = apply(fault, [rec])
    assert codec.decode(out.record.value).value == {"score": 1, "fraud": True}
    errors = []
    bad = Record("src", 0, 1, None, json.dumps({"score": 1.0, "fraud": "yes"}).encode())
    fault = attach(
        Leak(LeakConfig(feature="score", label_field="fraud"), random.Random(0)),
        JsonCodec(),
        errors,
    )
    [out] = apply(fault, [bad])
    assert out.record.value == bad.value and errors[0][1] == "wrong_type"


@pytest.mark.parametrize(
    "settings",
    [{}, {"label_field": "fraud", "label_from": {"route": "labels", "field": "fraud"}}],
)
def test_the_label_comes_from_exactly_one_place(settings):
    with pytest.raises(ValueError, match="one of label_field"):
        LeakConfig(feature="score", **settings)


def test_label_from_joins_the_labels_route_by_key_and_counts_misses():
    from confluent_kafka import Message

    from streamchaos.faults.base import FaultContext
    from streamchaos.faults.picks import picks_of

    cfg = LeakConfig(feature="score", label_from={"route": "labels", "field": "fraud"})
    ctx = FaultContext(JsonCodec(), "features", "features.shadow")
    misses = []
    ctx.join_missed = misses.append
    ctx.joined(cfg)  # as the stage does
    label = Message(topic="labels", partition=0, offset=9, key=b"c1", value=b'{"fraud": true}')
    for table in ctx.joins.taps("labels"):
        table.observe([label], 0, 1, JsonCodec())
    fault = Leak(cfg, random.Random(1))
    fault.ctx = ctx
    rows = [Record("features", 0, i, k, b'{"score": 0.25}') for i, k in enumerate([b"c1", b"c2"])]
    first, second = fault.act(picks_of(rows, codec=JsonCodec()), 0.0)
    assert json.loads(first.value) == {"score": 1.0}
    assert first.injection.detail["joined"] == {"topic": "labels", "partition": 0, "offset": 9}
    assert not hasattr(second, "value") and misses == ["leak"]
