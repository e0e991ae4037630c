"""The bridge's garbage-collector setting is scoped to its run and opt-in."""

from __future__ import annotations

import gc
import signal

import pytest

from streamchaos.bridge.gc_tuning import GC_GEN0_THRESHOLD, fewer_collections


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


def test_bridges_side_by_side_restore_the_defaults_when_the_last_one_ends():
    before = gc.get_threshold()
    first, second = fewer_collections(True), fewer_collections(True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first one ends while the second still runs
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_the_cli_runs_the_bridge_with_the_setting(tmp_path, monkeypatch):
    import streamchaos.bridge
    from streamchaos.cli import main

    seen = {}

    class Recorder:
        def __init__(self, cfg, **options):
            seen.update(options)

        def run(self, idle_exit=None):
            return 0

    monkeypatch.setattr(streamchaos.bridge, "Bridge", Recorder)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's own handlers
    config = tmp_path / "c.yaml"
    config.write_text("experiment: e\nroutes: [{source: a, shadow: a.shadow}]\n")
    assert main(["run", "-c", str(config)]) == 0
    assert seen == {"tune_gc": True}
