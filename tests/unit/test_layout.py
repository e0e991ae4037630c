"""The hot path stays small enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamchaos"
CORE = sorted([*(PACKAGE / "bridge").glob("*.py"), *(PACKAGE / "engine").glob("*.py")])


@pytest.mark.parametrize("path", CORE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bridge_and_engine_modules_are_short_and_dispatch_on_types_not_classes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 300
    assert "__class__" not in text  # an action says what it does (``apply``), by its type
