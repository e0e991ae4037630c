"""The sweep's plan and report without a broker: grid validation, the cells and the
experiment built from them, the bootstrap, and the files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from streamchaos.errors import ConfigError
from streamchaos.evaluation.sweep_report import (
    CSV_COLUMNS,
    Cell,
    SweepReport,
    bootstrap,
    cell_rows,
    min_detectable,
    write_outputs,
)
from streamchaos.sweep import SweepGrid, experiment_for, plan_cells

FAULT = {"type": "drift", "features": {"amount": {"shift": "{severity}", "unit": "sigma"}}}


def grid(**changes):
    settings = {
        "experiment": "base.yaml",
        "fault": FAULT,
        "severity": [0.5, 1, 2],
        "fraction": [0.1, 0.5],
        "repeats": 2,
        "episode": "5s",
        "gap": "10s",
        "alerts": {"file": "alerts.jsonl"},
    }
    return SweepGrid.model_validate(settings | changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"fault": {"type": "drift", "features": {"amount": {"shift": 1}}}},
            "severity changes nothing",
        ),
        ({"fault": FAULT | {"fraction": 0.2}}, "fault.fraction: set by the sweep"),
        ({"fraction": [0.1, 1.5]}, "fraction: each must be in"),
        ({"severity": [1, 1]}, "severity: each value once"),
        ({"alerts": {}}, "exactly one of file, topic, prometheus"),
        ({"alerts": {"file": "a", "topic": "t"}}, "exactly one of"),
        ({"repeats": 0}, "repeats"),
        (
            {"fault": {"type": "drift", "features": {"a": {"shift": "{severity}s"}}}},
            "changes nothing",
        ),
        ({"max_delay": "10s"}, "max_delay: must be shorter than gap"),
    ],
)
def test_bad_grids_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        grid(**changes)


def test_cells_cover_the_grid_each_repeat_shuffled_and_spaced_by_gap_and_episode():
    g = grid()
    cells = plan_cells(g)
    assert len(cells) == 3 * 2 * 2 and g.duration == 12 * 15
    for repeat in (0, 1):
        pairs = {(c.severity, c.fraction) for c in cells if c.repeat == repeat}
        assert pairs == {(s, f) for s in (0.5, 1, 2) for f in (0.1, 0.5)}
    assert [c.start for c in cells] == [10 + 15 * i for i in range(12)]
    assert plan_cells(g) == cells  # seeded
    assert [c[:2] for c in plan_cells(grid(seed=1))] != [c[:2] for c in cells]


def test_the_experiment_gets_one_fault_per_cell_on_the_named_route():
    base = {
        "experiment": "e",
        "routes": [
            {"source": "a", "shadow": "a.shadow", "faults": [{"type": "drop"}]},
            {"source": "b", "shadow": "b.shadow"},
        ],
    }
    with pytest.raises(ConfigError, match="several routes"):
        experiment_for(grid(), base, plan_cells(grid()))
    with pytest.raises(ConfigError, match="'c' is not a route"):
        experiment_for(grid(route="c"), base, plan_cells(grid()))
    cells = plan_cells(grid(route="a"))
    raw = experiment_for(grid(route="a"), base, cells)
    faults = raw["routes"][0]["faults"]
    assert [f["name"] for f in faults] == [c.name for c in cells]
    first = faults[0]
    assert first["features"]["amount"]["shift"] == cells[0].severity
    assert first["fraction"] == cells[0].fraction
    assert first["schedule"] == {"start": cells[0].start, "duration": 5.0}
    assert raw["ledger"]["path"].endswith("out/sweep/sweep-ledger.jsonl")
    assert base["routes"][0]["faults"] == [{"type": "drop"}]  # the base is left alone
    with pytest.raises(ConfigError, match="clock: a sweep runs live"):
        experiment_for(grid(route="a"), base | {"clock": "event"}, cells)


def test_bootstrap_brackets_the_median_and_needs_two_values():
    assert bootstrap([3.0], 0.5) is None
    lo, hi = bootstrap([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.5)
    assert 1.0 <= lo <= 4.0 <= hi <= 7.0
    assert bootstrap([1.0, 2.0, 3.0], 0.5) == bootstrap([1.0, 2.0, 3.0], 0.5)  # seeded


def test_rows_recall_and_min_detectable_per_fraction():
    cells = [Cell(s, f, r, 0.0) for s in (1.0, 2.0) for f in (0.1, 0.5) for r in range(4)]
    delays = {
        c.name: (1.0 + c.repeat if c.severity == 2.0 or c.fraction == 0.5 else None) for c in cells
    }
    rows = cell_rows(cells, delays)
    assert [(r.fraction, r.severity, r.recall) for r in rows] == [
        (0.1, 1.0, 0.0),
        (0.1, 2.0, 1.0),
        (0.5, 1.0, 1.0),
        (0.5, 2.0, 1.0),
    ]
    assert rows[1].delay_median == 2.5 and rows[0].delay_median is None
    assert min_detectable(rows, 0.9) == {0.1: 2.0, 0.5: 1.0}
    assert min_detectable(rows[:1], 0.9) == {0.1: None}


def test_outputs_hold_every_row(tmp_path):
    cells = [Cell(s, 0.2, r, 0.0) for s in (1.0, 2.0) for r in range(3)]
    rows = cell_rows(cells, {c.name: 0.5 if c.severity == 2.0 else None for c in cells})
    rep = SweepReport(rows, min_detectable(rows, 0.9), 1, 3600.0, 1.0, (0.025, 5.57))
    paths = write_outputs(rep, tmp_path)
    assert {p.name for p in paths} == {"sweep.json", "sweep.csv", "recall.png", "delay.png"}
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["min_detectable"] == {"0.2": 2.0} and len(doc["rows"]) == 2
    with (tmp_path / "sweep.csv").open() as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == 3
    assert "minimum detectable severity at fraction 0.2: 2" in rep.table()


def test_the_shipped_grid_builds_a_valid_experiment_from_the_demo():
    import yaml

    from streamchaos.config import config_from_dict
    from streamchaos.sweep import load_grid

    g = load_grid("configs/sweep.yaml")
    base = yaml.safe_load(Path(g.experiment).read_text())
    cfg = config_from_dict(experiment_for(g, base, plan_cells(g)), env={})
    assert len(cfg.routes[0].faults) == 3 * 2 * 3


def test_a_bad_grid_file_is_a_config_error_naming_the_field(tmp_path, capsys):
    from streamchaos.cli import main

    bad = tmp_path / "grid.yaml"
    bad.write_text("experiment: x.yaml\nfault: {type: drift}\nseverity: [1]\nfraction: [2]\n")
    assert main(["sweep", "-c", str(bad)]) == 2
    assert "alerts: Field required" in capsys.readouterr().err
    bad.write_text(bad.read_text() + "alerts: {file: a.jsonl}\n")
    assert main(["sweep", "-c", str(bad)]) == 2
    assert "fraction: each must be in (0, 1]" in capsys.readouterr().err


def test_a_cell_whose_episode_saw_no_record_is_listed_not_counted_as_missed():
    from streamchaos.evaluation.scoring import score
    from streamchaos.evaluation.sweep_report import records_seen, report

    cells = [Cell(1.0, 0.5, r, 0.0) for r in range(2)]
    ledger = [
        {"kind": "episode_end", "fault": cells[0].name, "detail": {"records": 0}},
        {"kind": "episode_end", "fault": cells[1].name, "detail": {"records": 120}},
    ]
    seen = records_seen(ledger)
    assert seen == {cells[0].name: 0, cells[1].name: 120}
    rep = report(cells, score([], [], max_delay=1.0), 0.9, seen)
    assert rep.not_run == [cells[0].name]
    assert [(r.repeats, r.detected) for r in rep.rows] == [(1, 0)]
    assert f"not scored (no record passed in the episode): {cells[0].name}" in rep.table()
