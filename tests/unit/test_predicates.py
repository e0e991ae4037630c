"""``where:`` on any fault: the predicate table, and the stage that tests it after the draw."""

from __future__ import annotations

import json

import confluent_kafka as ck
import pytest

from streamchaos.codec import JsonCodec
from streamchaos.config import config_from_dict
from streamchaos.engine import Pipeline
from streamchaos.errors import ConfigError
from streamchaos.faults.base import FaultContext
from streamchaos.predicates import Predicate

VALUE = {
    "amount": 120.5,
    "country": "DE",
    "flag": True,
    "user": {"tier": "gold"},
    "n": None,
    "label": "None",
    "code": "1",
}
HEADERS = {"tenant": "acme", "model-version": "v7", "retries": "3", "debug": "TRUE"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"country": "DE"}, True),  # a bare value: equal
        ({"country": "FR"}, False),
        ({"country": ["FR", "DE"]}, True),  # a list: in
        ({"country": {"in": ["FR", "IT"]}}, False),
        ({"amount": {"gt": 100, "le": 120.5}}, True),  # every test must hold
        ({"amount": {"lt": 100}}, False),
        ({"amount": {"ge": 120.5}}, True),
        ({"country": {"gt": 1}}, False),  # a range never matches text
        ({"amount": 120.5}, True),
        ({"flag": True}, True),
        ({"flag": 1}, False),  # true is not 1
        ({"n": None}, True),  # null is a value
        ({"missing": None}, False),  # a field the record lacks is not null
        ({"user.tier": "gold"}, True),  # nested
        ({"user.tier": {"regex": "^go"}}, True),
        ({"country": {"regex": "^F"}}, False),
        ({"header.tenant": "acme"}, True),
        ({"header.model-version": {"in": ["v6", "v7"]}}, True),
        ({"header.retries": {"ge": 3}}, True),  # header text compared as a number
        ({"header.retries": 3}, True),
        ({"header.absent": "x"}, False),
        ({"key": {"regex": "^user-1"}}, True),
        ({"key": "user-2"}, False),
        ({"partition": {"in": [0, 2]}}, True),
        ({"partition": 1}, False),
        ({"country": "DE", "header.tenant": "other"}, False),
        ({"label": None}, False),  # the text "None" is not null
        ({"label": "None"}, True),
        ({"code": 1}, False),  # a value field's text "1" is not the number 1
        ({"code": "1"}, True),
        ({"header.retries": "3"}, True),  # header text: 3, 3.0 and "3" alike
        ({"header.retries": 3.0}, True),
        ({"header.debug": True}, True),  # true matches the text TRUE
    ],
)
def test_the_predicate_table(where, expected):
    assert Predicate.of(where).test(VALUE, HEADERS, "user-17", 2) is expected


def test_a_test_needs_something_to_test_and_a_regex_that_compiles():
    route = {"source": "src", "shadow": "src.shadow", "format": "json"}
    for where, problem in (
        ({"amount": {}}, r"where\.amount: .*at least one of eq"),
        ({"amount": {"regex": "("}}, r"regex '\(': missing \)"),
        ({"amount": {"between": 1}}, "between"),
    ):
        raw = {
            "experiment": "e",
            "routes": [route | {"faults": [{"type": "drop", "where": where}]}],
        }
        with pytest.raises(ConfigError, match=problem):
            config_from_dict(raw, env={})
    raw = {
        "experiment": "e",
        "routes": [
            {"source": "s", "shadow": "s.shadow", "faults": [{"type": "drop", "where": {"a": 1}}]}
        ],
    }
    with pytest.raises(ConfigError, match=r"faults\[0\]\.where\.a: a value field needs format"):
        config_from_dict(raw, env={})


def pipeline(*faults):
    raw = {
        "experiment": "e",
        "routes": [
            {"source": "src", "shadow": "src.shadow", "format": "json", "faults": list(faults)}
        ],
    }
    ctx = FaultContext(JsonCodec(), "src", "src.shadow")
    pipe = Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, 7, ctx)
    pipe.tick(0.0)
    return pipe


def messages(n):
    return [
        ck.Message(
            topic="src",
            partition=0,
            offset=i,
            key=b"user-%d" % i,
            value=json.dumps({"i": i, "amount": 1.0, "country": ["DE", "FR"][i % 2]}).encode(),
            headers=[("tenant", b"acme" if i % 3 == 0 else b"other")],
        )
        for i in range(n)
    ]


def test_only_records_in_the_segment_are_touched_and_the_fraction_is_of_them():
    drift = {"type": "drift", "features": {"amount": {"shift": 5}}, "where": {"country": "DE"}}
    plan = pipeline(drift).plan(0, messages(10), 0, 10, 0.0)
    changed = {i: json.loads(items[0].new_value)["amount"] for i, items in plan.outputs.items()}
    assert changed == dict.fromkeys(range(0, 10, 2), 6.0)  # every DE record, no FR one


def test_header_and_key_predicates_need_no_decoding_and_hold_for_any_fault():
    drop = {
        "type": "drop",
        "fraction": 1.0,
        "where": {"header.tenant": "acme", "key": {"regex": "[02468]$"}},
    }
    plan = pipeline(drop).plan(0, messages(12), 0, 12, 0.0)
    assert sorted(plan.outputs) == [0, 6]  # tenant acme (0, 3, 6, 9) with an even key
    assert all(items == [] for items in plan.outputs.values())  # dropped


def test_the_draw_comes_first_so_the_segment_gets_the_fraction():
    drop = {"type": "drop", "fraction": 0.5, "where": {"country": "DE"}}
    msgs = messages(4000)
    dropped = sorted(pipeline(drop).plan(0, msgs, 0, 4000, 0.0).outputs)
    assert all(i % 2 == 0 for i in dropped)
    assert len(dropped) == pytest.approx(1000, abs=100)  # half of the 2000 DE records
    unfiltered = {"type": "drop", "fraction": 0.5}
    everyone = set(pipeline(unfiltered).plan(0, msgs, 0, 4000, 0.0).outputs)
    assert set(dropped) == {i for i in everyone if i % 2 == 0}  # the same draws, filtered


def test_where_loads_back_from_what_the_ledger_and_the_plan_file_write():
    from streamchaos.config.plan import fault_json, parse_fault

    fault = parse_fault(
        {"type": "drop", "where": {"n": {"eq": None}, "c": {"in": ["a"]}, "amount": {"gt": 1}}}
    )
    dumped = fault_json(fault)
    assert dumped["where"] == {"n": {"eq": None}, "c": {"in": ["a"]}, "amount": {"gt": 1.0}}
    assert parse_fault(dumped) == fault
    assert fault.model_dump(mode="json")["where"] == dumped["where"]  # episode lines


def test_nothing_a_record_holds_makes_the_where_raise():
    drop = {"type": "drop", "fraction": 1.0, "where": {"amount": {"gt": 100}}}
    deep = b"[" * 100_000 + b"]" * 100_000
    huge = b'{"amount": 1' + b"0" * 400 + b"}"
    msgs = [
        ck.Message(topic="src", partition=0, offset=i, value=v)
        for i, v in enumerate([deep, huge, b"not json", None])
    ]
    plan = pipeline(drop).plan(0, msgs, 0, 4, 0.0)
    assert sorted(plan.outputs) == [1]  # the huge number is > 100; the rest never match
