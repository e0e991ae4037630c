"""``corrupt`` on numeric fields rewritten in the Avro bytes (no decode)."""

from __future__ import annotations

import random

from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.faults.corrupt import Corrupt
from streamchaos.record import Record
from tests.fakes import PatchOnly
from tests.faultkit import apply, attach
from tests.schemas import avro_record

SCHEMA = ParsedSchema.of(
    avro_record("C", user="string", count="long", small="int", amount="double")
)
CODEC = AvroCodec(None, SCHEMA)


def make(errors, codec=CODEC, **cfg):
    return attach(Corrupt(Corrupt.Config(**cfg), random.Random(1)), codec, errors)


def rec(**value):
    base = {"user": "u", "count": 3, "small": 2, "amount": 1.5}
    return Record("src", 0, 1, b"k", CODEC.encode(base | value, SCHEMA, None))


def test_unit_scale_on_integer_fields_resizes_their_varints(errors):
    fault = make(
        errors, PatchOnly(None, SCHEMA), mode="unit_scale", factor=1000, fields=["small", "count"]
    )
    [em] = apply(fault, [rec(count=60, small=-60)], 0.0)
    assert errors == []
    assert CODEC.decode(em.record.value).value == {
        "user": "u",
        "count": 60_000,
        "small": -60_000,
        "amount": 1.5,
    }
    assert em.injections[0].detail["fields"]["count"] == {"old": 60, "new": 60_000}


def test_a_value_the_field_cannot_hold_is_reported_and_passes_unchanged(errors):
    fault = make(errors, mode="unit_scale", factor=1000, fields=["small"])
    source = rec(small=2**30)
    [em] = apply(fault, [source], 0.0)
    assert em.record is source and not em.injections
    assert [e[1] for e in errors] == ["out_of_range"]


def test_nan_on_an_integer_field_is_a_wrong_type(errors):
    [em] = apply(make(errors, mode="nan", fields=["count"]), [rec()], 0.0)
    assert not em.injections and [e[1] for e in errors] == ["wrong_type"]


def test_the_full_decode_path_checks_the_range_too(errors):
    """A nullable int is not patched in place; fastavro alone would write the overflow."""
    schema = ParsedSchema.of(avro_record("N", n=["null", "int"]))
    codec = AvroCodec(None, schema)
    fault = make(errors, mode="unit_scale", factor=1000, fields=["n"])
    attach(fault, codec, errors)
    source = Record("src", 0, 1, b"k", codec.encode({"n": 2**30}, schema, None))
    [em] = apply(fault, [source], 0.0)
    assert em.record is source and [e[1] for e in errors] == ["out_of_range"]
    [em] = apply(fault, [Record("src", 0, 2, b"k", codec.encode({"n": 7}, schema, None))], 0.0)
    assert codec.decode(em.record.value).value == {"n": 7000}


def test_a_long_changed_to_an_int_it_cannot_hold_is_refused(errors):
    """The range check sits in the Avro encode, so every fault that writes integers gets
    it: schema_break's change_type long → int too (fastavro would write the overflow)."""
    from streamchaos.faults.schema_break import SchemaBreak

    fault = SchemaBreak(
        SchemaBreak.Config(mode="change_type", field="count", to="int"), random.Random(1)
    )
    attach(fault, CODEC, errors)
    source = rec(count=2**40)
    [em] = apply(fault, [source], 0.0)
    assert em.record is source and [e[1] for e in errors] == ["out_of_range"]
    [em] = apply(fault, [rec(count=5)], 0.0)
    assert em.injections and errors == [errors[0]]


def test_stuck_freezes_the_first_value_of_each_episode():
    """With a recurring schedule, episode 2 freezes its own first value, not episode 1's."""
    from streamchaos.codec import JsonCodec
    from streamchaos.config import config_from_dict
    from streamchaos.engine import Pipeline
    from streamchaos.faults.base import FaultContext
    from tests.fakes import message

    fault = {"type": "corrupt", "mode": "stuck", "fields": ["amount"], "fraction": 1.0}
    fault["schedule"] = {"start": 0, "every": 10, "on": 1}
    route = {"source": "src", "shadow": "src.shadow", "format": "json", "faults": [fault]}
    cfg = config_from_dict({"experiment": "e", "routes": [route]}, env={})
    codec = JsonCodec()
    pipeline = Pipeline("src", cfg.routes[0].faults, 7, FaultContext(codec, "src", "src.shadow"))

    def stuck_at(offset, amount, now):
        pipeline.tick(now)
        record = Record("src", 0, offset, b"k", codec.encode({"amount": amount}, None, None))
        [item] = pipeline.plan(0, [message(record)], 0, 1, now).outputs[0]
        return codec.decode(item.value).value["amount"]

    assert [stuck_at(0, 1.0, 0.1), stuck_at(1, 2.0, 0.5)] == [1.0, 1.0]
    assert pipeline.tick(5.0)[0].kind == "episode_end"
    assert [stuck_at(2, 7.0, 10.1), stuck_at(3, 8.0, 10.5)] == [7.0, 7.0]
