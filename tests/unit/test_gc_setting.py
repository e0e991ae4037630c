"""The bridge's garbage-collector setting is scoped to its run and opt-in."""

from __future__ import annotations

import gc

import pytest

from streamchaos.bridge.runner import GC_GEN0_THRESHOLD, fewer_collections


def test_thresholds_raised_inside_and_restored_after_even_on_error():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections(True):
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD > before[0]
        raise RuntimeError("the bridge failed")
    assert gc.get_threshold() == before


def test_disabled_leaves_the_thresholds_alone():
    before = gc.get_threshold()
    with fewer_collections(False):
        assert gc.get_threshold() == before
