"""``streamchaos faults`` says what the models say: YAML names, true defaults, nesting."""

from __future__ import annotations

import re

import pytest
from pydantic_core import PydanticUndefined

from streamchaos.faults.base import FaultConfig
from streamchaos.faults.describe import describe_faults
from streamchaos.faults.drift import FeatureDrift
from streamchaos.faults.registry import FAULTS

TEXT = describe_faults()


def section(fault: str) -> str:
    start = TEXT.index(f"\n{fault} — ")
    end = TEXT.find("\n\n", start + 1)
    return TEXT[start : end if end > 0 else None]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_parameter_of_a_fault_is_listed_by_its_yaml_name_with_its_default(fault):
    config = FAULTS[fault].Config
    text = section(fault)
    for name, field in config.model_fields.items():
        common = FaultConfig.model_fields.get(name)
        if name == "type" or (common is not None and field.default == common.default):
            continue  # listed once, under "Common to every fault"
        if field.default_factory is not None:
            default = repr(field.default_factory())
        elif field.default is PydanticUndefined:
            default = "required"
        else:
            default = repr(field.default)
        line = re.search(rf"^  {re.escape(field.alias or name)}: .*$", text, re.MULTILINE)
        assert line is not None, (fault, name)
        assert f" = {default}" in line.group(0), (fault, name, line.group(0))


def test_yaml_names_not_python_names():
    assert "\n  class: " in section("label") and "class_" not in TEXT


def test_drift_lists_what_each_feature_takes():
    text = section("drift")
    for name, field in FeatureDrift.model_fields.items():
        assert f"  features.<name>.{name}: " in text
        assert f" = {field.default!r}" in text.split(f"features.<name>.{name}: ")[1].split("\n")[0]


def test_list_defaults_are_shown_as_they_are():
    assert "fields: list[str] = []" in section("corrupt") and "always on  —" not in TEXT
