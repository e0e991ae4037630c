"""Fixtures the unit tests share."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def errors() -> list[Any]:
    """What a fault reported through its context (fault, reason, message), in order:
    pass it to ``tests.faultkit.attach``."""
    return []
