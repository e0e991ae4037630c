"""``streamchaos sweep``: run a grid of severity × fraction live and report the detector's
recall and delay per cell, with intervals, curves and the minimum detectable severity."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamchaos.cli.common import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="recall and delay curves over severity × fraction")
    p.add_argument("-c", "--grid", required=True, help="the grid file (YAML)")
    p.add_argument("--out", help="output directory (default: the grid's out)")
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from streamchaos.evaluation.sweep_report import records_seen, report, write_outputs
    from streamchaos.sweep import load_grid, run_sweep, score_sweep

    grid = load_grid(args.grid)
    if args.out:  # every output there, the sweep's ledger too
        grid = grid.model_copy(update={"out": args.out})
    cells = len(grid.severity) * len(grid.fraction) * grid.repeats
    print(f"sweep: {cells} cells, {grid.duration + grid.max_delay:.0f} s of live traffic")
    run = run_sweep(grid)
    rep = report(run.cells, score_sweep(run), grid.recall_target, records_seen(run.ledger))
    print(rep.table())
    for path in write_outputs(rep, Path(grid.out)):
        print(f"wrote {path}")
    return EXIT_OK
