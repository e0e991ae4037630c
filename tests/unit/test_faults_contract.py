"""Every registered fault passes the same contract (STYLE.md habit 11)."""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
from pathlib import Path

import pytest

from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.config import config_from_dict
from streamchaos.engine import RouteEngine
from streamchaos.faults import FAULTS
from streamchaos.faults.base import FaultContext
from streamchaos.record import Emission, Record

SETTINGS = {
    "delay": {"distribution": "exponential", "delay": 0.2, "cap": 1.0},
    "reorder": {"window": 4, "max_wait": 0.5},
    "duplicate": {"copies": 2, "spacing": 0.1},
    "drop": {},
    "outage": {"schedule": {"start": 0.0, "duration": 1.0}},
    "stale_replay": {"lag": 0.2, "mode": "inject"},
    "schema_break": {"mode": "rename_field", "field": "amount", "to": "amt"},
    "corrupt": {"mode": "spike", "fields": ["amount"], "k": 5},
    "drift": {"features": {"amount": {"shift": 3}, "country": {"new_category": "XX"}}},
    "label": {"mode": "flip", "field": "label"},
}
SCHEMA = ParsedSchema.of(
    {
        "type": "record",
        "name": "Features",
        "fields": [
            {"name": "user", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "country", "type": "string"},
            {"name": "label", "type": "boolean"},
        ],
    }
)
CODEC = AvroCodec(None, SCHEMA)
SCHEMA_FILE = Path(tempfile.mkdtemp()) / "features.avsc"
SCHEMA_FILE.write_text(json.dumps(SCHEMA.raw))


def records(n=200, partition=0):
    return [
        Record(
            "src",
            partition,
            i,
            b"k%d" % (i % 7),
            CODEC.encode(
                {"user": f"u{i % 7}", "amount": i * 1.5, "country": "DE", "label": i % 3 == 0},
                SCHEMA,
                None,
            ),
            (("h", b"x"),),
            1000 + i,
        )
        for i in range(n)
    ]


def run(fault_type, seed=7, n=200):
    cfg = {"type": fault_type, "fraction": 0.3, **SETTINGS[fault_type]}
    engine = RouteEngine("src", [_config(cfg)], seed, FaultContext(CODEC, "src", "src.shadow"))
    inputs = records(n)
    snapshot = copy.deepcopy(inputs)
    out = []
    now = 0.0
    for i, rec in enumerate(inputs):
        now = i * 0.01
        out += engine.tick(now)[1]
        out += engine.process(rec, now)
    held_before_drain = sum(engine.held(s) for s in engine.stages)
    drained = engine.drain()
    assert len(drained) == held_before_drain
    out += drained
    assert sum(engine.held(s) for s in engine.stages) == 0
    return inputs, snapshot, out


def _config(fault):
    raw = {
        "experiment": "e",
        "routes": [
            {
                "source": "src",
                "shadow": "src.shadow",
                "format": "avro",
                "schema_file": str(SCHEMA_FILE),
                "faults": [fault],
            }
        ],
    }
    return config_from_dict(raw, env={}).routes[0].faults[0]


def signature(out):
    return [
        (
            em.source.offset,
            em.record and (em.record.key, em.record.value, em.record.timestamp),
            [
                (i.effect, sorted((k, str(v)) for k, v in i.detail.items() if k != "held_ms"))
                for i in em.injections
            ],
        )
        for em in out
    ]


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_same_seed_same_output(fault_type):
    assert signature(run(fault_type)[2]) == signature(run(fault_type)[2])


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_other_seed_other_selection(fault_type):
    assert signature(run(fault_type, seed=1)[2]) != signature(run(fault_type, seed=2)[2])


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_input_records_untouched(fault_type):
    """Records are tuples; what a fault could really change in place is the writer schema
    it mutates for a contract break (compared with the file written at import, before any
    test ran: a snapshot taken here would miss what an earlier test changed)."""
    inputs, snapshot, _ = run(fault_type)
    assert inputs == snapshot and SCHEMA.raw == json.loads(SCHEMA_FILE.read_text())


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_every_record_accounted_for(fault_type):
    """Each source offset: 1 + extras - drops emissions, after the final drain."""
    _, _, out = run(fault_type)
    emitted = {}
    expected = dict.fromkeys(range(200), 1)
    for em in out:
        if em.record is not None:
            emitted[em.source.offset] = emitted.get(em.source.offset, 0) + 1
        for inj in em.injections:
            expected[em.source.offset] += {"extra": 1, "drop": -1}.get(inj.effect, 0)
    assert {k: v for k, v in expected.items() if v} == emitted


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_config_dump_reload_identical(fault_type):
    cfg = _config({"type": fault_type, "name": "x", **SETTINGS[fault_type]})
    again = _config(cfg.model_dump(mode="json"))
    assert again == cfg


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_fault_has_purpose_and_doc(fault_type):
    cls = FAULTS[fault_type]
    assert cls.purpose and sys.modules[cls.__module__].__doc__


@pytest.mark.parametrize("fault_type", sorted(FAULTS))
def test_fault_injects_something(fault_type):
    """A fault that silently does nothing (a misnamed field, a swallowed error) fails here."""
    _, _, out = run(fault_type)
    assert any(em.injections for em in out)


PIPELINES = [[t] for t in sorted(FAULTS)] + [
    ["delay", "corrupt"],
    ["corrupt", "drift"],
    ["drift", "duplicate", "label"],
]


def _drive(faults, batched, sizes=(1, 7, 50, 3, 120)):
    """Records of two partitions in runs, as a consumed batch has them; one clock value
    per chunk. Per record (``process``) or per chunk (``process_many``)."""
    configs = [_config({"type": t, "fraction": 0.3, **SETTINGS[t]}) for t in faults]
    engine = RouteEngine("src", configs, 7, FaultContext(CODEC, "src", "src.shadow"))
    p0, p1 = records(150, 0), records(150, 1)
    inputs = [r for k in range(0, 150, 25) for r in p0[k : k + 25] + p1[k : k + 25]]
    out, i, step = [], 0, 0
    while i < len(inputs):
        chunk = inputs[i : i + sizes[step % len(sizes)]]
        now = step * 0.05
        out += engine.tick(now)[1]
        if batched:
            for ems in engine.process_many(chunk, now):
                out += ems
        else:
            for rec in chunk:
                out += engine.process(rec, now)
        i, step = i + len(chunk), step + 1
    return out + engine.drain()


@pytest.mark.parametrize("faults", PIPELINES, ids="+".join)
def test_batches_give_the_same_output_as_records_one_by_one(faults):
    """The bridge hands a consumed batch's selected records over at once; what comes out,
    and in which order, must not depend on that."""
    one_by_one = signature(_drive(faults, batched=False))
    assert any(inj for _, _, injs in one_by_one for inj in injs)
    assert signature(_drive(faults, batched=True)) == one_by_one


def _instance(fault, rng_seed):
    cfg = _config({**fault, "fraction": 1.0})
    inst = FAULTS[cfg.type](cfg, random.Random(rng_seed))
    inst.ctx = FaultContext(CODEC, "src", "src.shadow")  # what the engine gives value faults
    return inst


CONFIGS = [{"type": t, **SETTINGS[t]} for t in sorted(FAULTS)]
CONFIGS.append({"type": "delay", "distribution": "fixed", "delay": 0.2})
CONFIGS.append({"type": "corrupt", "mode": "nan", "fields": ["amount"]})
CONFIGS.append({"type": "drift", "features": {"amount": {"shift": 2}}})  # draws nothing
UNSEEDED = [f for f in CONFIGS if not _instance(f, 0).uses_rng]  # ``uses_rng = False``


def _name(fault):
    return "/".join(filter(None, [fault["type"], fault.get("distribution"), fault.get("mode")]))


def test_which_faults_skip_seeding():
    assert sorted(map(_name, UNSEEDED)) == [
        "corrupt/nan",
        "delay/fixed",
        "drift",
        "drop",
        "duplicate",
        "outage",
        "stale_replay/inject",
    ]


@pytest.mark.parametrize("fault", UNSEEDED, ids=_name)
def test_a_fault_that_skips_seeding_draws_nothing(fault):
    """The engine does not seed the rng of a fault with ``uses_rng`` False: its output must
    then be the same whatever state the rng is in."""

    def outputs(rng_seed):
        inst = _instance(fault, rng_seed)
        out, now = [], 0.0
        for i, rec in enumerate(records(40)):
            now = i * 0.05
            out += inst.due(now) + inst.apply(rec, now)
        return signature(out + inst.drain())

    assert outputs(1) == outputs(2)
    assert outputs(1)  # it did emit


def test_a_fault_that_draws_says_so():
    assert _instance({"type": "delay", "distribution": "uniform"}, 1).uses_rng


REVALUED = {  # a route's lone value-only fault: the bridge hands it bytes (``revalue``)
    "corrupt spike (patched)": {"type": "corrupt", "mode": "spike", "fields": ["amount"]},
    "corrupt nan (patched)": {"type": "corrupt", "mode": "nan", "fields": ["amount"]},
    "corrupt null (decoded, new schema)": {"type": "corrupt", "mode": "null", "fields": ["amount"]},
    "corrupt unseen_category (decoded)": {
        "type": "corrupt",
        "mode": "unseen_category",
        "fields": ["country"],
    },
    "drift noise (patched)": {"type": "drift", "features": {"amount": {"noise": 2.0}}},
    "drift shift, no draws (patched)": {
        "type": "drift",
        "features": {"amount": {"shift": 2.0}},
        "warmup": 2,
    },
    "drift shift + new category (decoded)": {"type": "drift", **SETTINGS["drift"]},
    "drift in a segment": {
        "type": "drift",
        "features": {"amount": {"scale": 2.0}},
        "where": {"user": "u3"},
        "warmup": 2,
        "fraction": 1.0,
    },
}
NOT_REVALUED = [{"type": t, **SETTINGS[t]} for t in sorted(FAULTS) if t not in ("corrupt", "drift")]
NOT_REVALUED.append({"type": "corrupt", "mode": "timestamp_skew"})  # the record time


@pytest.mark.parametrize("fault", list(REVALUED.values()), ids=list(REVALUED))
def test_revalue_gives_what_process_many_gives(fault):
    """The bridge's in-place path (values in, new values and notes out) must produce the
    same records and ledger details as the engine's general path, one record at a time
    (``process``: the fault's ``apply``, its rng seeded by the engine)."""
    cfg = _config({"fraction": 0.4, **fault})
    ctx = FaultContext(CODEC, "src", "src.shadow")
    general = RouteEngine("src", [cfg], 7, ctx)
    in_place = RouteEngine("src", [cfg], 7, ctx)
    changed = 0
    for step, part in enumerate([0, 1, 0, 0, 1]):
        now = step * 0.5
        general.tick(now)
        in_place.tick(now)
        chunk = records(200, part)[step * 40 : step * 40 + 40]
        want = [general.process(record, now) for record in chunk]
        got = in_place.revalue(part, [r.offset for r in chunk], [r.value for r in chunk], now)
        assert got is not None
        fault_obj = in_place.lone.instance(part)
        for record, ems, result in zip(chunk, want, got, strict=True):
            [em] = ems
            if result is None:
                assert (em.record, em.injections) == (record, [])
                continue
            changed += 1
            assert em.record == record.with_value(result[0])
            [inj] = em.injections
            assert inj.detail == fault_obj.describe(result[1])
    assert changed > 20


@pytest.mark.parametrize("fault", NOT_REVALUED, ids=lambda f: f"{f['type']} {f.get('mode', '')}")
def test_other_faults_take_the_general_path(fault):
    engine = RouteEngine(
        "src", [_config({**fault, "fraction": 1.0})], 7, FaultContext(CODEC, "src", "x")
    )
    engine.tick(0.5)
    chunk = records(5)
    assert engine.revalue(0, [r.offset for r in chunk], [r.value for r in chunk], 0.5) is None


def test_two_stages_take_the_general_path():
    faults = [{**REVALUED["corrupt nan (patched)"], "name": n} for n in ("a", "b")]
    configs = [_config({**f, "fraction": 1.0}) for f in faults]
    engine = RouteEngine("src", configs, 7, FaultContext(CODEC, "src", "x"))
    engine.tick(0.5)
    assert engine.revalue(0, [0], [records(1)[0].value], 0.5) is None


HELD = {  # a route's lone ``delay``: the bridge hands it consumed messages as they came
    "fixed": {"type": "delay", "delay": 1.0},
    "uniform": {"type": "delay", "distribution": "uniform", "min": 0.1, "max": 2.0},
    "exponential, capped, small limit": {
        "type": "delay",
        "distribution": "exponential",
        "delay": 1.0,
        "cap": 1.5,
        "max_held": 4,
    },
    "fixed, small limit": {"type": "delay", "delay": 1.0, "max_held": 3},
    "fixed, budget": {"type": "delay", "delay": 1.0, "max_injections_per_second": 20},
}


def _released(ems_or_held, fault_obj):
    """(source offset, ledger detail) of what a holding stage let go, either form."""
    out = []
    for item in ems_or_held:
        if hasattr(item, "injections"):
            [inj] = item.injections
            out.append((item.source.offset, inj.detail))
        else:
            out.append((item.offset, fault_obj.describe(item)))
    return out


@pytest.mark.parametrize("fault", list(HELD.values()), ids=list(HELD))
def test_hold_gives_what_process_gives(fault):
    """The bridge's held-as-consumed path (``RouteEngine.hold``: items in, ``Held`` items
    out of ``tick`` and ``drain``) must release the same records, at the same ticks, with
    the same ledger details (``released_early`` included), as the general path."""
    cfg = _config({"fraction": 0.4, **fault})
    general = RouteEngine("src", [cfg], 7)
    held = RouteEngine("src", [cfg], 7)
    assert held.lone_hold is not None
    seen = 0
    for step, part in enumerate([0, 1, 0, 0, 1, 0]):
        now = step * 0.4
        want = _released(general.tick(now)[1], None)
        got = _released(held.tick(now)[1], held.lone_hold.instance(part))
        assert sorted(got, key=str) == sorted(want, key=str)
        chunk = records(240, part)[step * 40 : step * 40 + 40]
        cands = held.candidates(part, chunk[0].offset, len(chunk))
        items = [r for r in chunk if r.offset in cands]
        want_now = [general.process(r, now) for r in chunk]
        taken, early = held.hold(part, [r.offset for r in items], items, now)
        fault_obj = held.lone_hold.instance(part)
        by_offset = {r.offset: ems for r, ems in zip(chunk, want_now, strict=True)}
        early_at = {items[i].offset: _released(out, fault_obj) for i, out in early}
        for r, took in zip(items, taken, strict=True):
            ems = by_offset.pop(r.offset)
            if took:  # held: what the general path released early on taking it, if any
                assert early_at.get(r.offset, []) == _released(ems, None)
                seen += 1
            else:  # the budget refused it: it passes
                assert ems == [Emission(r, r, [])]
        passed = [ems for r, ems in zip(chunk, want_now, strict=True) if r.offset in by_offset]
        assert all(ems == [Emission(ems[0].source, ems[0].source, [])] for ems in passed)
    for part in (0, 1):
        fault_obj = held.lone_hold.instance(part)
        assert _released(held.drain([part]), fault_obj) == _released(general.drain([part]), None)
    assert seen > 30
