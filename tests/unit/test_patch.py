"""In-place patching of fixed-width Avro fields agrees with a full decode/encode."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.codec.patch import locator

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
    loc = locator(RAW, "amount")
    assert loc is not None and loc.read(data) == amount
    patched, old = loc.write(data, new)
    assert old == amount
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
    patched, old = locator(RAW, "f").write(data, math.nan)
    assert old == 0.25 and math.isnan(CODEC.decode(patched).value["f"])


def test_unsupported_layouts_fall_back():
    assert locator(RAW, "after") is None  # an array stands before it
    assert locator(RAW, "user") is None  # not fixed-width
    assert locator(RAW, "missing") is None
