"""JsonCodec: orjson where it reads and writes the same values as ``json``, ``json`` elsewhere."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamchaos.codec import JsonCodec, Undecodable

CODEC = JsonCodec()
FEATURES = {
    "user": "user-2345",
    "amount": 57.5,
    "merchant": "m-0042",
    "country": "DE",
    "device": "ios",
    "count": 12345,
    "f1": 2.0,
    "f2": 4.5,
    "f3": 20.0,
    "note": "x" * 66,
}


def stdlib(value: Any) -> bytes:
    """What the codec wrote before orjson, and still writes for NaN, inf and big ints."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def same(a: Any, b: Any) -> bool:
    """Equal with types (an int read back as a float is a difference) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def round_trip(value: Any) -> Any:
    return CODEC.decode(CODEC.encode(value, None, None)).value


def test_flat_feature_record_round_trips_byte_for_byte():
    data = CODEC.encode(FEATURES, None, None)
    assert data == stdlib(FEATURES)  # ASCII and ordinary floats: the same bytes as before
    assert same(CODEC.decode(data).value, FEATURES)
    assert CODEC.decode(data).schema is None and CODEC.decode(data).schema_id is None


def test_keys_keep_their_order():
    value = {"z": 1, "a": 2, "m": {"y": 3, "b": 4}}
    data = CODEC.encode(value, None, None)
    assert data == b'{"z":1,"a":2,"m":{"y":3,"b":4}}'
    assert list(CODEC.decode(data).value) == ["z", "a", "m"]


def test_nested_values_round_trip():
    value = {
        "features": [{"a": 1.5, "b": [1, 2, [3, None]]}, {"c": True, "d": False}],
        "meta": {"empty": {}, "list": [], "s": "", "neg": -0.0, "tiny": 5e-324},
        "top": [[[[1e300]]]],
    }
    assert same(round_trip(value), value)
    assert same(round_trip([value, value]), [value, value])


@pytest.mark.parametrize("scalar", [0, -1, 1.25, "s", True, None, 2**63, -(2**63)])
def test_top_level_scalars_round_trip(scalar):
    assert same(round_trip(scalar), scalar)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_written_as_json_writes_them(bad):
    flat = {"a": 1.0, "x": bad, "b": None}
    nested = {"a": [1, {"deep": [2.0, bad]}], "t": (1, bad)}
    for value in (flat, nested, [bad], bad):
        data = CODEC.encode(value, None, None)
        assert data == stdlib(value)  # NaN / Infinity / -Infinity, never null
        assert b"null" not in data.replace(b'"b":null', b"")
        assert same(CODEC.decode(data).value, json.loads(data))


def test_corrupt_nan_output_reads_back_as_nan():
    value = dict(FEATURES, amount=math.nan, f1=math.inf, f2=-math.inf)
    data = CODEC.encode(value, None, None)
    assert b'"amount":NaN' in data and b'"f1":Infinity' in data and b'"f2":-Infinity' in data
    assert same(CODEC.decode(data).value, value)


def test_nulls_without_non_finite_floats_stay_on_orjson():
    value = {"a": None, "s": "null", "n": [None, 1.5]}
    assert CODEC.encode(value, None, None) == b'{"a":null,"s":"null","n":[null,1.5]}'
    assert same(round_trip(value), value)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"a":NaN}', {"a": math.nan}),
        (b'{"a":[Infinity,-Infinity]}', {"a": [math.inf, -math.inf]}),
        (b"NaN", math.nan),
        (b'{"a":1e400}', {"a": math.inf}),  # beyond the float range: json reads it as inf
        (b'\xef\xbb\xbf{"a":1}', {"a": 1}),  # a UTF-8 BOM, which json skips
        ('{"a":1}'.encode("utf-16"), {"a": 1}),
        (b'"\\ud800"', "\ud800"),  # an escaped lone surrogate
    ],
)
def test_values_only_json_reads_still_decode(data, expected):
    assert same(CODEC.decode(data).value, expected)


@pytest.mark.parametrize(
    "number",
    [
        2**64 - 1,  # the largest orjson reads as an int
        2**64,
        -(2**63),
        -(2**63) - 1,  # 19 digits, read as a float by orjson
        10**30,
        -(10**40),
        1_700_000_000_000_000_000,  # a nanosecond timestamp
    ],
)
def test_big_ints_round_trip_exactly(number):
    for value in ({"id": number, "x": 1.5}, [1, [number]], number):
        data = CODEC.encode(value, None, None)
        assert data == stdlib(value)
        assert same(CODEC.decode(data).value, value)  # an int, not a rounded float


def test_long_digit_runs_in_strings_and_floats_decode_unchanged():
    for data in (
        b'{"id":"123456789012345678901234","x":1.5}',
        b'{"x":0.000014750872999999999}',
        b'{"x":123456789012345678901234.5,"d":"--------------------"}',
    ):
        assert same(CODEC.decode(data).value, json.loads(data))


@pytest.mark.parametrize("value", [1e-7, 1e-5, 9e-5, 1.4750873e-05, 1e16, 1e22, 1 / 3])
def test_floats_round_trip_whatever_their_notation(value):
    data = CODEC.encode({"x": value}, None, None)
    assert CODEC.decode(data).value["x"] == value
    assert json.loads(data)["x"] == value


def test_non_ascii_strings_are_raw_utf8_and_read_back_equal():
    value = {"名前": "Zoë ☃ 𝄞", "ctrl": "tab\tnl\n\x00\x1f\x7f", "quote": 'a"b\\c/'}
    data = CODEC.encode(value, None, None)
    assert "Zoë ☃ 𝄞".encode() in data  # documented: not \u escapes as json.dumps writes
    assert same(CODEC.decode(data).value, value)
    assert same(json.loads(data), value)
    assert same(CODEC.decode(stdlib(value)).value, value)  # the escaped form reads too


def test_values_orjson_refuses_are_written_as_before():
    for value in ({1: "int key", None: "none key"}, {"s": "lone \ud800 surrogate"}):
        data = CODEC.encode(value, None, None)
        assert data == stdlib(value)
        assert same(CODEC.decode(data).value, json.loads(data))


def test_what_json_refuses_is_still_refused():
    with pytest.raises(TypeError):
        CODEC.encode({"t": datetime.datetime(2024, 1, 1)}, None, None)
    with pytest.raises(TypeError):
        CODEC.encode({"b": b"bytes"}, None, None)


@pytest.mark.parametrize(
    "data",
    [b"{nope", b"[1,]", b'{"a":1,}', b"NaNa", b"01", b'"\xff"', b'{"a":1} x', b"nul", b"\x00"],
)
def test_bad_json_is_not_json(data):
    with pytest.raises(Undecodable) as info:
        CODEC.decode(data)
    assert info.value.reason == "not_json"


def test_tombstone_and_empty():
    for data, reason in ((None, "tombstone"), (b"", "empty")):
        with pytest.raises(Undecodable) as info:
            CODEC.decode(data)
        assert info.value.reason == reason


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and ±inf too
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_round_trip_property(value):
    data = CODEC.encode(value, None, None)
    assert same(CODEC.decode(data).value, value)
    assert same(json.loads(data), value)  # stdlib reads what the codec writes
    assert same(CODEC.decode(stdlib(value)).value, value)  # and the codec what stdlib wrote
