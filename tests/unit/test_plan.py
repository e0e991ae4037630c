"""Live fault changes are checked as the experiment file is, and the plan file keeps them."""

from __future__ import annotations

import json

import pytest

from streamchaos.config import config_from_dict
from streamchaos.config.plan import (
    NotFound,
    added,
    fault_json,
    load_plan,
    parse_fault,
    plan_hash,
    plan_of,
    removed,
    replaced,
    save_plan,
)
from streamchaos.errors import ConfigError


def cfg(faults=(), fmt="json", **extra):
    return config_from_dict(
        {
            "experiment": "x",
            "routes": [
                {"source": "src", "shadow": "src.shadow", "format": fmt, "faults": list(faults)},
                {"source": "raw", "shadow": "raw.shadow"},
            ],
            **extra,
        },
        env={},
    )


DRIFT = {"type": "drift", "name": "shift", "features": {"amount": {"shift": 2}}}


def test_a_fault_is_parsed_as_the_file_parses_it_and_errors_name_the_field():
    assert parse_fault(DRIFT).label == "shift"
    assert fault_json(parse_fault(DRIFT)) == DRIFT | {"features": {"amount": {"shift": 2.0}}}
    with pytest.raises(ConfigError, match=r"^fraction: .*less than or equal to 1"):
        parse_fault({"type": "delay", "fraction": 3})
    with pytest.raises(ConfigError, match="frobnicate"):
        parse_fault({"type": "frobnicate"})
    with pytest.raises(ConfigError, match="mapping"):
        parse_fault(["delay"])


def test_add_replace_remove_give_a_new_config_and_leave_the_old_one_alone():
    base = cfg()
    one = added(base, "src", parse_fault(DRIFT))
    assert [f.label for f in one.routes[0].faults] == ["shift"] and not base.routes[0].faults
    two = replaced(one, "src", "shift", parse_fault({**DRIFT, "fraction": 0.5}))
    assert two.routes[0].faults[0].fraction == 0.5
    assert removed(two, "src", "shift").routes[0].faults == []
    assert len({plan_hash(c) for c in (base, one, two)}) == 3
    assert plan_hash(removed(two, "src", "shift")) == plan_hash(base)


def test_an_invalid_change_is_refused_with_the_field_named():
    one = added(cfg(), "src", parse_fault(DRIFT))
    with pytest.raises(ConfigError, match=r"faults\[1\]\.name: 'shift' is already the name"):
        added(one, "src", parse_fault(DRIFT))
    with pytest.raises(ConfigError, match=r"faults\[0\]\.type: drift reads record values"):
        added(one, "raw", parse_fault(DRIFT))  # a bytes route
    with pytest.raises(ConfigError, match="schema_break needs format avro"):
        added(one, "src", parse_fault({"type": "schema_break", "mode": "drop_field", "field": "a"}))
    with pytest.raises(NotFound, match="no such route") as err:
        added(one, "nope", parse_fault(DRIFT))
    assert err.value.status == 404
    with pytest.raises(NotFound, match=r"no fault named 'other' \(faults: shift\)"):
        removed(one, "src", "other")


def test_the_plan_file_keeps_the_plan_and_the_edited_file_wins(tmp_path):
    path = tmp_path / "plan.json"
    base = cfg(control={"plan_file": str(path)})
    assert load_plan(path, base) is None  # no file yet
    live = added(base, "src", parse_fault(DRIFT))
    save_plan(path, base, live)
    back = load_plan(path, base)
    assert back is not None and plan_of(back) == plan_of(live)
    assert json.loads(path.read_text())["hash"] == plan_hash(live)
    edited = cfg(faults=[{"type": "delay"}], control={"plan_file": str(path)})
    assert load_plan(path, edited) is None  # the experiment file changed since


def test_a_plan_file_that_no_longer_fits_is_refused_naming_it(tmp_path):
    path = tmp_path / "plan.json"
    base = cfg()
    doc = {"experiment": "x", "base": plan_hash(base), "routes": {"src": [{"type": "nope"}]}}
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"plan.json: routes.src\[0\]: .*nope"):
        load_plan(path, base)
    path.write_text(json.dumps({**doc, "routes": {"gone": []}}))
    with pytest.raises(ConfigError, match=r"routes.gone: route 'gone': no such route"):
        load_plan(path, base)
    path.write_text(json.dumps({**doc, "experiment": "other"}))
    with pytest.raises(ConfigError, match="holds experiment 'other'"):
        load_plan(path, base)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_plan(path, base)
