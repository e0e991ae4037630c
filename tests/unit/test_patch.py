"""Rewriting numeric fields inside Avro bytes agrees with a full decode/encode."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.codec.patch import Layouts, spans
from streamchaos.codec.wire import Undecodable
from tests.schemas import avro_record

RAW = avro_record(
    "R",
    user="string",
    n=["null", "long"],
    flag="boolean",
    kind={"type": "enum", "name": "K", "symbols": ["A", "B", "C"]},
    ts={"type": "long", "logicalType": "timestamp-millis"},
    f="float",
    amount="double",
    tags={"type": "array", "items": "string"},
    after="double",
)
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


REFERENCE = avro_record(
    "Ref", kind={"type": "enum", "name": "K", "symbols": ["A", "B"]}, again="K", x="double"
)


def test_unsupported_layouts_fall_back():
    assert spans(REFERENCE, ["x"]) is None  # a named type used by name: the full decode
    assert spans(RAW, ["user"]) is None  # not a number
    assert spans(RAW, ["missing"]) is None
    assert spans(RAW, ["amount", "amount"]) is None
    assert spans(RAW, ["after"]) is not None  # arrays are skipped


def test_bytes_the_full_decode_refuses_are_refused():
    value = {"user": "u", "n": 5, "flag": True, "kind": "B", "ts": 0, "f": 0.5}
    data = CODEC.encode(value | {"amount": 1.0, "tags": ["a", "b"], "after": 2.0}, SCHEMA, None)
    loc = spans(RAW, ["amount"])
    assert loc.read(data)[0][2] == 1.0
    negative_length = b"\x01" + data[1:]  # zigzag 1 = -1: the string "user" of length -1
    bad_branch = data[:2] + b"\x04" + data[3:]  # union index 2 of a 2-branch union
    for bad in (data + b"\x00", data[:-1]):
        with pytest.raises(IndexError):
            loc.read(bad)
    # refused where they are read (a negative index would even work on a Python list)
    with pytest.raises(IndexError, match="negative length"):
        loc.read(negative_length)
    with pytest.raises(IndexError, match="union branch 2 of 2"):
        loc.read(bad_branch)


SPAN_RAW = avro_record(
    "S",
    user="string",
    amount="double",
    opt=["null", "string"],
    tags={"type": "array", "items": "string"},
    m={"type": "map", "values": ["null", "long"]},
    inner={"type": "record", "name": "I", "fields": [{"name": "s", "type": "string"}]},
    count="long",
    small="int",
    f="float",
    g="double",
    tail="string",
)
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
    new_f=st.one_of(st.none(), st.floats(width=32, allow_nan=False)),
    new_g=st.one_of(st.none(), st.floats(allow_nan=False)),
    tags=st.lists(st.text(max_size=5), max_size=4),
    m=st.dictionaries(st.text(max_size=4), st.one_of(st.none(), INT64), max_size=3),
)
def test_spans_rewrite_equals_decode_change_encode(
    user, opt, amount, count, small, new_count, new_small, new_amount, new_f, new_g, tags, m
):
    """Varints that change length are spliced; fields after them stay intact; arrays,
    maps and nested records before them are skipped; adjacent doubles and floats are read
    and written together; every target changed, or some."""
    value = {
        "user": user,
        "amount": amount,
        "opt": opt,
        "tags": tags,
        "m": m,
        "inner": {"s": user[:3]},
        "count": count,
        "small": small,
        "f": 0.5,
        "g": -amount,
        "tail": "end",
    }
    data = SPAN_CODEC.encode(value, SPAN_SCHEMA, None)
    located = spans(SPAN_RAW, ["small", "g", "amount", "count", "f"])
    assert located is not None
    found = located.read(data)
    assert [v for _, _, v in found] == [small, -amount, amount, count, 0.5]
    news = {"small": new_small, "g": new_g, "amount": new_amount, "count": new_count, "f": new_f}
    patched = located.write(data, found, list(news.values()))
    want = dict(value)
    for name, new in news.items():
        if new is not None:
            want[name] = new
    assert SPAN_CODEC.decode(patched).value == want


def test_spans_refuse_what_they_cannot_write():
    located = spans(SPAN_RAW, ["small"])
    data = SPAN_CODEC.encode(
        {"user": "u", "amount": 1.0, "opt": None, "tags": [], "m": {}, "inner": {"s": ""}}
        | {"count": 1, "small": 1, "f": 0.5, "g": 0.0, "tail": ""},
        SPAN_SCHEMA,
        None,
    )
    with pytest.raises(OverflowError):
        located.write(data, located.read(data), [2**31])
    assert spans(SPAN_RAW, ["opt"]) is None  # a union: the full decode handles it
    assert spans(SPAN_RAW, ["tail", "missing"]) is None
    with pytest.raises(IndexError):
        located.read(data[:3])


class _Registry:
    """Schema ids → schemas, as a registry answers them (pure logic: no HTTP here)."""

    def __init__(self, schemas):
        self.schemas = schemas
        self.asked = 0

    def schema(self, schema_id):
        self.asked += 1
        if schema_id not in self.schemas:
            raise Undecodable("unknown_schema_id", f"schema id {schema_id} unknown")
        return self.schemas[schema_id]


def test_layouts_find_a_writer_by_its_header_and_keep_refusing_bad_frames():
    """A located header is not located again; what the header cannot vouch for (a
    tombstone, an empty value, a bad magic byte, an unknown id) is refused for the same
    reason as the full decode gives, before and after."""
    reordered = {**SPAN_RAW, "fields": list(reversed(SPAN_RAW["fields"]))}
    registry = _Registry({1: SPAN_SCHEMA, 2: ParsedSchema.of(reordered)})
    codec = AvroCodec(registry)
    checked = []
    layouts = Layouts(["amount"], checked.append)
    value = {"user": "u", "amount": 2.5, "opt": None, "tags": [], "m": {}, "inner": {"s": ""}}
    value |= {"count": 1, "small": 1, "f": 0.5, "g": 2.0, "tail": "t"}
    one, two = (codec.encode(value, registry.schemas[i], i) for i in (1, 2))
    for _ in range(3):
        for data in (one, two):
            located, start = layouts.find(codec, data)
            assert located.read(data, start)[0][2] == 2.5
    assert registry.asked == 2 and checked == [registry.schemas[1], registry.schemas[2]]
    for bad, reason in [
        (None, "tombstone"),
        (b"", "empty"),
        (b"\x01" + one[1:], "bad_magic"),
        (b"\x00\x00\x00\x00\x09" + one[5:], "unknown_schema_id"),
    ]:
        with pytest.raises(Undecodable) as refused:
            layouts.find(codec, bad)
        assert refused.value.reason == reason
