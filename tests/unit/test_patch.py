"""Rewriting numeric fields inside Avro bytes agrees with a full decode/encode."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.codec.patch import spans

RAW = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "n", "type": ["null", "long"]},
        {"name": "flag", "type": "boolean"},
        {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "f", "type": "float"},
        {"name": "amount", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "after", "type": "double"},
    ],
}
SCHEMA = ParsedSchema.of(RAW)
CODEC = AvroCodec(None, SCHEMA)


@settings(max_examples=150, deadline=None)
@given(
    user=st.text(max_size=40),
    n=st.one_of(st.none(), st.integers(-(2**62), 2**62)),
    flag=st.booleans(),
    kind=st.sampled_from(["A", "B", "C"]),
    amount=st.floats(allow_nan=False),
    new=st.floats(allow_nan=False),
)
def test_patch_equals_decode_change_encode(user, n, flag, kind, amount, new):
    value = {
        "user": user,
        "n": n,
        "flag": flag,
        "kind": kind,
        "ts": 1_700_000_000_000,
        "f": 1.5,
        "amount": amount,
        "tags": ["x"],
        "after": 2.0,
    }
    data = CODEC.encode(value, SCHEMA, None)
    loc = spans(RAW, ["amount"])
    assert loc is not None
    found = loc.read(data)
    assert found[0][2] == amount
    patched = loc.write(data, found, [new])
    got = CODEC.decode(patched).value
    before = CODEC.decode(data).value
    assert got["amount"] == new
    assert {k: v for k, v in got.items() if k != "amount"} == {
        k: v for k, v in before.items() if k != "amount"
    }


def test_nan_and_float32_fields():
    value = {
        "user": "u",
        "n": None,
        "flag": True,
        "kind": "C",
        "ts": 0,
        "f": 0.25,
        "amount": 1.0,
        "tags": [],
        "after": 3.0,
    }
    data = CODEC.encode(value, SCHEMA, None)
    loc = spans(RAW, ["f"])
    found = loc.read(data)
    patched = loc.write(data, found, [math.nan])
    assert found[0][2] == 0.25 and math.isnan(CODEC.decode(patched).value["f"])


def test_unsupported_layouts_fall_back():
    assert spans(RAW, ["after"]) is None  # an array stands before it
    assert spans(RAW, ["user"]) is None  # not a number
    assert spans(RAW, ["missing"]) is None
    assert spans(RAW, ["amount", "amount"]) is None


SPAN_RAW = {
    "type": "record",
    "name": "S",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "opt", "type": ["null", "string"]},
        {"name": "count", "type": "long"},
        {"name": "small", "type": "int"},
        {"name": "f", "type": "float"},
        {"name": "tail", "type": "string"},
    ],
}
SPAN_SCHEMA = ParsedSchema.of(SPAN_RAW)
SPAN_CODEC = AvroCodec(None, SPAN_SCHEMA)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(
    user=st.text(max_size=300),
    opt=st.one_of(st.none(), st.text(max_size=20)),
    amount=st.floats(allow_nan=False),
    count=INT64,
    small=INT32,
    new_count=st.one_of(st.none(), INT64),
    new_small=st.one_of(st.none(), INT32),
    new_amount=st.one_of(st.none(), st.floats(allow_nan=False)),
)
def test_spans_rewrite_equals_decode_change_encode(
    user, opt, amount, count, small, new_count, new_small, new_amount
):
    """Varints that change length are spliced; fields after them stay intact."""
    value = {
        "user": user,
        "amount": amount,
        "opt": opt,
        "count": count,
        "small": small,
        "f": 0.5,
        "tail": "end",
    }
    data = SPAN_CODEC.encode(value, SPAN_SCHEMA, None)
    located = spans(SPAN_RAW, ["small", "amount", "count"])
    assert located is not None
    found = located.read(data)
    assert [v for _, _, v in found] == [small, amount, count]
    patched = located.write(data, found, [new_small, new_amount, new_count])
    want = dict(value)
    for name, new in (("small", new_small), ("amount", new_amount), ("count", new_count)):
        if new is not None:
            want[name] = new
    assert SPAN_CODEC.decode(patched).value == want


def test_spans_refuse_what_they_cannot_write():
    located = spans(SPAN_RAW, ["small"])
    data = SPAN_CODEC.encode(
        {"user": "u", "amount": 1.0, "opt": None, "count": 1, "small": 1, "f": 0.5, "tail": ""},
        SPAN_SCHEMA,
        None,
    )
    with pytest.raises(OverflowError):
        located.write(data, located.read(data), [2**31])
    assert spans(SPAN_RAW, ["opt"]) is None  # a union: the full decode handles it
    assert spans(SPAN_RAW, ["tail", "missing"]) is None
    assert spans(RAW, ["after"]) is None  # an array stands before it
    with pytest.raises(IndexError):
        located.read(data[:3])
