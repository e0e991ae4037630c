"""The examples in the docstrings run, so they stay true; every fault shows one."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import streamchaos
from streamchaos.faults.registry import FAULTS

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(streamchaos.__path__, "streamchaos.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_module_has_an_example(fault):
    module = importlib.import_module(FAULTS[fault].__module__)
    assert doctest.testmod(module).attempted > 0, f"{module.__name__}: add a >>> example"
