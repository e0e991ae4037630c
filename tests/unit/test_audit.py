"""The audit balances source, shadow and ledger exactly, and names what does not balance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamchaos.errors import ConfigError
from streamchaos.evaluation.reconcile import Discrepancy, KnownFailure, reconcile
from streamchaos.ledger import read_ledger
from streamchaos.lineage import parse_origin

SRC = "features.payments"
SOURCE = {0: range(10), 1: range(5)}


def inj(offset, type_, effect, partition=0, topic=SRC, experiment="exp", **extra):
    return {
        "experiment": experiment,
        "route": topic,
        "fault": f"my-{type_}",
        "type": type_,
        "kind": "injection",
        "effect": effect,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "shadow": None,
        "at": 1_700_000_000_000,
        "detail": {},
        **extra,
    }


def episode(kind):
    return {"experiment": "exp", "fault": "my-delay", "kind": kind, "source": None, "at": 0}


LEDGER = [
    episode("episode_start"),
    inj(1, "delay", "modify"),
    inj(2, "duplicate", "extra"),
    inj(3, "drop", "drop"),
    inj(4, "stale_replay", "extra"),  # stale record injected beside the live one
    inj(5, "stale_replay", "modify"),  # stale record served instead of the live one
    inj(0, "reorder", "modify", partition=1),
    episode("episode_end"),
]


def balanced_shadow():
    """One emission per source offset, none for the drop, two for each extra; out of order."""
    every = [(p, o) for p, offsets in SOURCE.items() for o in offsets if (p, o) != (0, 3)]
    return list(reversed([*every, (0, 2), (0, 4)]))


def without(shadow, origin):
    shadow = list(shadow)
    shadow.remove(origin)
    return shadow


def test_balanced_run_with_every_effect_is_ok():
    report = reconcile(SOURCE, balanced_shadow(), LEDGER, SRC)
    assert report.ok, report.summary()
    assert (report.source_records, report.shadow_records, report.episodes) == (15, 16, 2)
    assert report.injections[("stale_replay", "extra")] == 1
    assert sum(report.injections.values()) == 6
    assert report.summary().splitlines()[0].endswith(": OK")


@pytest.mark.parametrize(("origin", "expected"), [((1, 2), 1), ((0, 2), 2), ((0, 5), 1)])
def test_removed_shadow_record_is_named_missing(origin, expected):
    report = reconcile(SOURCE, without(balanced_shadow(), origin), LEDGER, SRC)
    assert not report.ok
    assert report.missing == [Discrepancy(*origin, expected, expected - 1)]
    assert f"missing {SRC}[{origin[0]}]@{origin[1]}: expected {expected}" in report.summary()


def test_unexplained_duplicate_is_not_ok():
    report = reconcile(SOURCE, [*balanced_shadow(), (0, 7)], LEDGER, SRC)
    assert not report.ok
    assert report.unexpected_duplicates == [Discrepancy(0, 7, 1, 2)]


def test_dropped_record_still_present_is_unexpected():
    report = reconcile(SOURCE, [*balanced_shadow(), (0, 3)], LEDGER, SRC)
    assert report.unexpected_duplicates == [Discrepancy(0, 3, 0, 1)]
    assert not report.ok


@pytest.mark.parametrize("replayed", [False, True])
def test_failed_modify_is_a_known_failure_not_loss(replayed):
    """It never landed, or a replay after a restart landed it: both balance."""
    ledger = [*LEDGER, inj(6, "delay", "modify", status="failed")]
    shadow = balanced_shadow() if replayed else without(balanced_shadow(), (0, 6))
    report = reconcile(SOURCE, shadow, ledger, SRC)
    assert report.ok, report.summary()
    assert report.known_failures == [KnownFailure(0, 6, "my-delay", "modify")]
    assert f"known delivery failure {SRC}[0]@6: my-delay (modify)" in report.summary()


def test_failed_extra_is_not_expected_in_the_shadow():
    ledger = [*LEDGER, inj(7, "duplicate", "extra", status="failed")]
    assert reconcile(SOURCE, balanced_shadow(), ledger, SRC).ok
    report = reconcile(SOURCE, [*balanced_shadow(), (0, 7)], ledger, SRC)
    assert report.unexpected_duplicates == [Discrepancy(0, 7, 1, 2)]


def test_other_topics_experiments_and_offsets_are_ignored():
    ledger = [
        *LEDGER,
        inj(6, "drop", "drop", topic="features.other"),
        inj(7, "drop", "drop", experiment="another-run"),
        inj(99, "duplicate", "extra"),  # outside the audited range
    ]
    shadow = [*balanced_shadow(), (0, 99), (3, 0)]
    report = reconcile(SOURCE, shadow, ledger, SRC, experiment="exp")
    assert report.ok, report.summary()
    assert (report.ledger_ignored, report.shadow_ignored) == (3, 2)


def test_more_drops_than_emissions_is_a_ledger_conflict():
    ledger = [*LEDGER, inj(3, "drop", "drop")]
    report = reconcile(SOURCE, balanced_shadow(), ledger, SRC)
    assert report.ledger_conflicts == [Discrepancy(0, 3, -1, 0)]
    assert not report.ok


def test_summary_lists_at_most_twenty_problems():
    report = reconcile({0: range(25)}, [], [], SRC)
    lines = report.summary().splitlines()
    assert len(report.missing) == 25
    assert sum(line.startswith("  missing") for line in lines) == 20
    assert lines[-1] == "  ... and 5 more"


def write_lines(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"kind": "injection", "source": \n', r"ledger\.jsonl:2: not JSON"),
        ('["a list"]\n', r"ledger\.jsonl:2: not a JSON object"),
        (json.dumps({**inj(1, "drop", "drop"), "effect": "vanish"}) + "\n", r":2: effect"),
        (json.dumps({**inj(1, "drop", "drop"), "source": None}) + "\n", r":2: source"),
    ],
)
def test_malformed_ledger_line_is_named(tmp_path, bad, message):
    path = write_lines(tmp_path, [json.dumps(LEDGER[0]) + "\n", bad, "\n"])
    with pytest.raises(ConfigError, match=message):
        read_ledger(path)


def test_ledger_round_trips_and_a_torn_last_line_is_skipped(tmp_path, caplog):
    path = write_lines(tmp_path, [json.dumps(e) + "\n" for e in LEDGER] + ['{"kind": "inj'])
    assert read_ledger(path) == LEDGER
    assert "torn last line" in caplog.text
    with pytest.raises(ConfigError, match="cannot read ledger"):
        read_ledger(tmp_path / "absent.jsonl")


def test_parse_origin():
    assert parse_origin(b"features.payments/3/17") == ("features.payments", 3, 17)
    assert parse_origin("t/0/0") == ("t", 0, 0)
    assert parse_origin(b"t/x/1") is None
    assert parse_origin(b"\xff/0/1") is None
    assert parse_origin(None) is None
