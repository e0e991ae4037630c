"""Every module stays small enough to read in one sitting; the hot path dispatches on
types, not on classes told apart by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamchaos"
MODULES = sorted(PACKAGE.rglob("*.py"))
CORE = [p for p in MODULES if p.parent.name in ("bridge", "engine")]


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= 300


@pytest.mark.parametrize("path", CORE, ids=_name)
def test_the_hot_path_dispatches_on_types_not_classes(path):
    assert "__class__" not in path.read_text()  # an action says what it does (``apply``)
