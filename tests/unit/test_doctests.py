"""The examples in the docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import streamchaos.faults

MODULES = [
    *(f"streamchaos.faults.{m.name}" for m in pkgutil.iter_modules(streamchaos.faults.__path__)),
    "streamchaos.lineage",
    "streamchaos.schedule",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
