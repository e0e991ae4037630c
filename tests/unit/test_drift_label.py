"""Drift and label faults on decoded records, with a fake clock."""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from streamchaos.codec import AvroCodec, JsonCodec, ParsedSchema
from streamchaos.faults.drift import Drift
from streamchaos.faults.label import Label
from streamchaos.record import Record
from tests.fakes import PatchOnly
from tests.faultkit import apply, attach
from tests.schemas import avro_record

CODEC = JsonCodec()


def rec(i, **value):
    return Record("src", 0, i, b"k", CODEC.encode(value, None, None))


def make(cls, errors=None, **cfg):
    return attach(cls(cls.Config(**cfg), random.Random(3)), CODEC, errors)


def out_values(fault, records, now=0.0):
    values = []
    for r in records:
        for em in apply(fault, [r], now):
            if em.record is not None:
                values.append(CODEC.decode(em.record.value).value)
    return values


def normal_records(n, seed=1, **extra):
    rng = random.Random(seed)
    return [rec(i, amount=rng.gauss(50, 10), **extra) for i in range(n)]


def test_shift_in_sigma_units_after_warmup():
    f = make(Drift, features={"amount": {"shift": 2, "unit": "sigma"}}, warmup=500)
    records = normal_records(3000)
    values = out_values(f, records)
    before = [CODEC.decode(r.value).value["amount"] for r in records]
    assert values[:499] == [{"amount": v} for v in before[:499]]  # warm-up passes unchanged
    shifts = [a["amount"] - b for a, b in zip(values[500:], before[500:], strict=True)]
    assert statistics.mean(shifts) == pytest.approx(20, rel=0.1)  # 2 × σ≈10


def test_absolute_shift_scales_with_linear_intensity():
    f = make(Drift, features={"amount": {"shift": 10}}, schedule={"shape": "linear", "ramp": 100})
    [v] = out_values(f, [rec(0, amount=1.0)], now=25)
    assert v["amount"] == pytest.approx(3.5)


def test_ramp_by_fraction_gives_the_full_shift():
    f = make(
        Drift,
        features={"amount": {"shift": 10}},
        ramp_by="fraction",
        schedule={"shape": "linear", "ramp": 100},
    )
    [v] = out_values(f, [rec(0, amount=1.0)], now=25)
    assert v["amount"] == 11.0


def test_scale_and_noise_change_spread_not_mean():
    records = normal_records(4000)
    scaled = out_values(make(Drift, features={"amount": {"scale": 2.0}}, warmup=300), records)
    noisy = out_values(make(Drift, features={"amount": {"noise": 10}}), records)
    for values in (scaled[300:], noisy):
        amounts = [v["amount"] for v in values]
        assert statistics.mean(amounts) == pytest.approx(50, abs=1.5)
        assert statistics.stdev(amounts) > 13


def test_categorical_remap_new_category_mix_and_null_rate():
    records = [rec(i, c=["a", "b"][i % 2], n=i) for i in range(4000)]
    remap = Counter(
        v["c"]
        for v in out_values(make(Drift, features={"c": {"remap": {"a": "b"}, "p": 0.5}}), records)
    )
    assert remap["a"] == pytest.approx(1000, abs=120)
    new = Counter(
        v["c"]
        for v in out_values(
            make(Drift, features={"c": {"new_category": "z", "rate": 0.25}}), records
        )
    )
    assert new["z"] == pytest.approx(1000, abs=120)
    mix = Counter(
        v["c"]
        for v in out_values(make(Drift, features={"c": {"mix": {"a": 0.9, "b": 0.1}}}), records)
    )
    assert mix["a"] == pytest.approx(3600, abs=150)
    nulls = sum(
        v["n"] is None for v in out_values(make(Drift, features={"n": {"null_rate": 0.3}}), records)
    )
    assert nulls == pytest.approx(1200, abs=130)


def test_missing_feature_is_reported_not_raised(errors):
    f = make(Drift, errors, features={"nope": {"shift": 1}})
    assert out_values(f, [rec(0, amount=1.0)]) == [{"amount": 1.0}]
    assert errors and errors[0][1] == "unknown_field"


def test_a_value_beyond_float64_fails_its_record_not_its_batch(errors):
    """Bad input is per record (DESIGN invariant 5): in a batch, as one at a time, the
    other records drift and only the huge JSON integer passes unchanged, reported."""
    f = make(Drift, errors, features={"amount": {"shift": 1}})
    records = [rec(i, amount=10**400 if i == 2 else float(i)) for i in range(5)]
    ems = apply(f, records, 0.0, list(range(5)))
    assert [bool(em.injections) for em in ems] == [True, True, False, True, True]
    assert ems[2].record == records[2]
    assert [e[1] for e in errors] == ["out_of_range"]


AVRO_SCHEMA = ParsedSchema.of(
    avro_record("F", user="string", amount="double", count="long", small="int")
)
AVRO = AvroCodec(None, AVRO_SCHEMA)


NUMERIC_DRIFT = {
    "amount": {"shift": 2, "unit": "sigma", "noise": 0.5},
    "count": {"shift": 1000},
    "small": {"scale": 3},
}


SHIFTS = {"amount": {"shift": 2.5}, "count": {"shift": 1000}, "small": {"shift": -3}}


@pytest.mark.parametrize("features", [NUMERIC_DRIFT, SHIFTS], ids=["mixed", "shifts only"])
def test_avro_fields_rewritten_in_place_drift_like_a_full_decode(features):
    """The byte-patching path (flat Avro, numeric drift) gives the values, ledger details
    and warm-up of the decode path, record for record: in batches of any size, those
    drifted as one array once the warm-up is over (``_drift_patched``) included."""
    rng = random.Random(5)
    values = [
        {"user": f"u{i}", "amount": rng.gauss(50, 10), "count": i * 7, "small": i % 13 - 6}
        for i in range(400)
    ]
    patched = make(Drift, features=features, warmup=50)
    attach(patched, PatchOnly(None, AVRO_SCHEMA))
    decoded = make(Drift, features=features, warmup=50)
    seeds = list(range(400))
    records = [
        Record("src", 0, i, b"k", AVRO.encode(v, AVRO_SCHEMA, None)) for i, v in enumerate(values)
    ]
    via_patch, start = [], 0
    while start < len(records):  # batches of 1 to 60 records
        end = start + rng.randrange(1, 61)
        via_patch += apply(patched, records[start:end], 0.0, seeds[start:end])
        start = end
    via_decode = apply(decoded, [rec(i, **v) for i, v in enumerate(values)], 0.0, seeds)
    assert [AVRO.decode(e.record.value).value for e in via_patch] == [
        CODEC.decode(e.record.value).value for e in via_decode
    ]
    assert [[i.detail for i in e.injections] for e in via_patch] == [
        [i.detail for i in e.injections] for e in via_decode
    ]
    changed = [e.injections[0].detail["features"] for e in via_patch]
    if features is NUMERIC_DRIFT:  # σ warms up first
        assert "amount" not in changed[10] and "amount" in changed[60]
    assert sum(bool(e.injections) for e in via_patch) == 400


FLOAT_SCHEMA = ParsedSchema.of(avro_record("G", user="string", x="float", y=["null", "float"]))
FLOATS = AvroCodec(None, FLOAT_SCHEMA)


@pytest.mark.parametrize("feature", ["x", "y"], ids=["rewritten in its bytes", "decoded"])
@pytest.mark.parametrize("shift", [0.1, 1e-9, 1e39], ids=["shift", "too small", "too large"])
def test_a_float_feature_is_ledgered_as_the_shadow_holds_it(feature, shift):
    """An Avro ``float`` keeps a 24-bit mantissa: the ledger's new value is what the
    shadow's bytes decode to; a drift too small for the field changes nothing and is no
    injection; one beyond its range fails the record, which passes unchanged. The second
    batch of ``x`` takes the warmed, one-layout path (``_drift_patched``)."""
    errors: list[tuple] = []
    fault = make(Drift, features={feature: {"shift": shift}}, warmup=2)
    attach(fault, FLOATS, errors)
    values = [{"user": "u", "x": 50.123 + i, "y": 50.123 + i} for i in range(20)]
    records = [
        Record("src", 0, i, b"k", FLOATS.encode(v, FLOAT_SCHEMA, None))
        for i, v in enumerate(values)
    ]
    ems = apply(fault, records[:10], 0.0, list(range(10)))
    ems += apply(fault, records[10:], 0.0, list(range(10, 20)))
    for record, em in zip(records, ems, strict=True):
        old = FLOATS.decode(record.value).value[feature]
        new = FLOATS.decode(em.record.value).value[feature]
        if shift == 0.1:
            [inj] = em.injections
            assert inj.detail["features"] == {feature: {"old": old, "new": new}}
            assert new != old
        else:
            assert em.injections == [] and em.record.value == record.value
    assert [reason for _, reason, _ in errors] == (["out_of_range"] * 20 if shift == 1e39 else [])


def test_truncated_avro_passes_unchanged_and_is_counted():
    reasons = []
    f = make(Drift, features={"count": {"shift": 1}})
    attach(f, AVRO)
    f.ctx.undecodable = reasons.append
    data = AVRO.encode({"user": "abc", "amount": 1.0, "count": 5, "small": 1}, AVRO_SCHEMA, None)
    bad = Record("src", 0, 1, b"k", data[:6])
    assert apply(f, [bad], 0.0)[0].record is bad and reasons == ["avro_error"]


def test_values_of_the_wrong_kind_are_reported_not_raised(errors):
    """JSON carries no schema: a string where a number belongs, a list as a category."""
    f = make(Drift, errors, features={"amount": {"shift": 1}, "c": {"remap": {"a": "b"}}})
    bad = [rec(0, amount="abc", c="a"), rec(1, amount=1.0, c=["a"]), rec(2, amount=1.0, c="a")]
    assert out_values(f, bad) == [
        {"amount": "abc", "c": "a"},
        {"amount": 1.0, "c": ["a"]},
        {"amount": 2.0, "c": "b"},
    ]
    assert [e[1] for e in errors] == ["wrong_type", "wrong_type"]


def test_label_flip_rate_and_matrix():
    records = [rec(i, label=i % 4 == 0) for i in range(4000)]
    flipped = out_values(make(Label, mode="flip"), records)
    assert all(v["label"] != (i % 4 == 0) for i, v in enumerate(flipped))
    classes = [rec(i, label=["fraud", "legit"][i % 2]) for i in range(4000)]
    matrix = out_values(make(Label, mode="flip", matrix={"fraud": {"legit": 0.3}}), classes)
    assert Counter(v["label"] for v in matrix)["fraud"] == pytest.approx(1400, abs=120)


def test_label_shuffle_permutes_within_windows():
    records = [rec(i, label=i % 5) for i in range(1000)]
    values = out_values(make(Label, mode="shuffle", window=50), records)
    labels = [v["label"] for v in values]
    assert labels[:50] == [i % 5 for i in range(50)]
    for k in range(1, 20):
        window = labels[50 * k : 50 * (k + 1)]
        assert Counter(window) == Counter(i % 5 for i in range(50 * (k - 1), 50 * k))
    assert labels[50:100] != [i % 5 for i in range(50, 100)]


def test_remove_class_and_exclude_segment_drop_with_ledger():
    f = make(Label, mode="remove_class", **{"class": "fraud"})
    ems = apply(f, [rec(0, label="fraud")], 0) + apply(f, [rec(1, label="legit")], 0)
    assert [em.record is None for em in ems] == [True, False]
    assert ems[0].injections[0].effect == "drop"
    g = make(Label, mode="exclude_segment", where={"country": "DE"})  # the stage tests where
    [em] = apply(g, [rec(0, label=1, country="DE")], 0)
    assert em.record is None and em.injections[0].detail["segment"] == {"country": "DE"}


def test_label_shuffle_starts_over_each_episode():
    """Episode 2's first records are not given labels shuffled from episode 1's window."""
    fault = make(Label, mode="shuffle", window=4)
    first = [rec(i, label=f"a{i}") for i in range(4)]  # fills the window: a pool of 4
    apply(fault, first, 0.0, list(range(4)))
    fault.episode_started()
    [out] = apply(fault, [rec(4, label="b")], 0.0, [4])
    assert out.record == out.source and not out.injections
