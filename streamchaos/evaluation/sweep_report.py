"""A sweep's figures per (severity, fraction), from one scorecard of the whole run.

Per cell: recall over its repeats with a Wilson 95 % interval; the detection delay's median
and p90 with percentile-bootstrap 95 % intervals (seeded, 2000 resamples; none from fewer
than two delays). For the run: false alarms per hour of clean time (the gaps) with the exact
Poisson interval — false alarms belong to no cell. Per fraction: the minimum detectable
severity, the smallest whose recall reaches the target (0.9 by default), or none.

>>> cells = [Cell(1.0, 0.5, 0, 0.0), Cell(2.0, 0.5, 0, 0.0)]
>>> rows = cell_rows(cells, {"sweep-s1-f0.5-r0": None, "sweep-s2-f0.5-r0": 1.5})
>>> [(r.severity, r.detected, r.recall) for r in rows]
[(1.0, 0, 0.0), (2.0, 1, 1.0)]
>>> min_detectable(rows, 0.9)
{0.5: 2.0}
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from streamchaos.evaluation.scorecard import Scorecard
from streamchaos.evaluation.scoring_nab import quantile, wilson

Interval = tuple[float, float] | None


class Cell(NamedTuple):
    """One episode of a sweep: a severity at a fraction, in one repeat."""

    severity: float
    fraction: float
    repeat: int
    start: float  # seconds after the bridge's start

    @property
    def name(self) -> str:
        """The fault name the cell's episode has in the ledger."""
        return f"sweep-s{self.severity:g}-f{self.fraction:g}-r{self.repeat}"


@dataclass(frozen=True)
class CellRow:
    severity: float
    fraction: float
    repeats: int
    detected: int
    recall: float
    recall_interval: Interval
    delay_median: float | None
    delay_median_interval: Interval
    delay_p90: float | None
    delay_p90_interval: Interval


def bootstrap(values: Sequence[float], q: float, seed: int = 0, n: int = 2000) -> Interval:
    """Percentile-bootstrap 95 % interval of the ``q`` quantile (None below 2 values)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    draws = np.random.default_rng(seed).choice(data, size=(n, len(data)), replace=True)
    stats = np.quantile(draws, q, axis=1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def cell_rows(cells: Sequence[Cell], delays: Mapping[str, float | None]) -> list[CellRow]:
    """``delays``: each cell's detection delay by name (None: missed)."""
    groups: dict[tuple[float, float], list[float | None]] = {}
    for cell in cells:
        groups.setdefault((cell.severity, cell.fraction), []).append(delays.get(cell.name))
    rows = []
    for (severity, fraction), found in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hits = [d for d in found if d is not None]
        rows.append(
            CellRow(
                severity,
                fraction,
                len(found),
                len(hits),
                len(hits) / len(found),
                wilson(len(hits), len(found)),
                quantile(hits, 0.5),
                bootstrap(hits, 0.5),
                quantile(hits, 0.9),
                bootstrap(hits, 0.9),
            )
        )
    return rows


def min_detectable(rows: Sequence[CellRow], target: float) -> dict[float, float | None]:
    """Per fraction, the smallest severity whose recall reaches ``target`` (None: none)."""
    out: dict[float, float | None] = {}
    for row in sorted(rows, key=lambda r: (r.fraction, r.severity)):
        out.setdefault(row.fraction, None)
        if out[row.fraction] is None and row.recall >= target:
            out[row.fraction] = row.severity
    return out


@dataclass(frozen=True)
class SweepReport:
    rows: list[CellRow]
    min_detectable: dict[float, float | None]
    false_alarms: int
    clean_time: float
    far_per_hour: float | None
    far_interval: Interval
    not_run: list[str] = field(default_factory=list)  # cells whose episode saw no record

    def table(self) -> str:
        lines = ["fraction  severity  recall (95%)        delay median (95%)     p90"]
        for r in self.rows:
            lo, hi = r.recall_interval or (0.0, 1.0)
            med = _num(r.delay_median) + _band(r.delay_median_interval)
            lines.append(
                f"{r.fraction:<9g} {r.severity:<9g} {r.recall:.2f} ({lo:.2f}..{hi:.2f})"
                f"    {med:<22} {_num(r.delay_p90)}"
            )
        far = "n/a" if self.far_per_hour is None else f"{self.far_per_hour:.1f}"
        lines.append(
            f"false alarms {self.false_alarms} over {self.clean_time:.0f} s clean: "
            f"{far} per hour{_band(self.far_interval)}"
        )
        for fraction, severity in self.min_detectable.items():
            shown = "none" if severity is None else f"{severity:g}"
            lines.append(f"minimum detectable severity at fraction {fraction:g}: {shown}")
        if self.not_run:
            lines.append(f"not scored (no record passed in the episode): {', '.join(self.not_run)}")
        return "\n".join(lines)


def report(
    cells: Sequence[Cell],
    card: Scorecard,
    recall_target: float = 0.9,
    seen: Mapping[str, int] | None = None,
) -> SweepReport:
    """The figures of a sweep whose cells' episodes ``card`` scored. ``seen``: records each
    cell's episode saw (``records_seen``); a cell that saw none (no traffic yet, or no
    partition assigned) was not run, and is listed instead of counted as a miss."""
    delays = {r.episode.fault: r.delay if r.detected else None for r in card.results}
    ran = [c for c in cells if seen is None or seen.get(c.name, 0) > 0]
    rows = cell_rows(ran, delays)
    return SweepReport(
        rows,
        min_detectable(rows, recall_target),
        card.false_alarms,
        card.clean_time,
        card.far,
        card.far_interval,
        [c.name for c in cells if c not in ran],
    )


def records_seen(entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Records each fault's last episode saw, from its ``episode_end`` ledger line."""
    return {
        str(e["fault"]): int((e.get("detail") or {}).get("records", 0))
        for e in entries
        if e.get("kind") == "episode_end"
    }


def write_outputs(rep: SweepReport, out: Path) -> list[Path]:
    """``sweep.json``, ``sweep.csv`` and, with matplotlib, ``recall.png``/``delay.png``."""
    out.mkdir(parents=True, exist_ok=True)
    doc = asdict(rep) | {"min_detectable": {str(k): v for k, v in rep.min_detectable.items()}}
    (out / "sweep.json").write_text(json.dumps(doc, indent=2) + "\n")
    with (out / "sweep.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rep.rows:
            writer.writerow(_csv_row(r, rep))
    written = [out / "sweep.json", out / "sweep.csv"]
    try:
        return written + plot_curves(rep.rows, out)
    except ImportError:  # matplotlib is the optional `plot` extra
        return written


CSV_COLUMNS = (
    *("fraction", "severity", "repeats", "detected", "recall", "recall_lo", "recall_hi"),
    *("delay_median", "delay_median_lo", "delay_median_hi", "delay_p90", "delay_p90_lo"),
    *("delay_p90_hi", "far_per_hour", "far_lo", "far_hi"),
)


def _csv_row(r: CellRow, rep: SweepReport) -> list[object]:
    def pair(i: Interval) -> list[object]:
        return ["", ""] if i is None else [round(i[0], 6), round(i[1], 6)]

    return [
        *(r.fraction, r.severity, r.repeats, r.detected, round(r.recall, 6)),
        *pair(r.recall_interval),
        _num(r.delay_median, ""),
        *pair(r.delay_median_interval),
        _num(r.delay_p90, ""),
        *pair(r.delay_p90_interval),
        _num(rep.far_per_hour, ""),
        *pair(rep.far_interval),
    ]


def _num(x: float | None, none: str = "-") -> str:
    return none if x is None else f"{x:.3f}"


def _band(i: Interval) -> str:
    return "" if i is None else f" ({i[0]:.2f}..{i[1]:.2f})"


NAN = float("nan")  # no point drawn: no delay (never detected) or no interval


def _nan(x: float | None) -> float:
    return NAN if x is None else x


def plot_curves(rows: Sequence[CellRow], out: Path) -> list[Path]:
    """``recall.png``: recall against severity, one line per fraction, Wilson bands;
    ``delay.png``: the median delay with its bootstrap band (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({r.fraction for r in rows})
    paths = []
    for name, ylabel in (("recall", "recall (95% Wilson band)"), ("delay", "median delay, s")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for fraction in fractions:
            line = sorted((r for r in rows if r.fraction == fraction), key=lambda r: r.severity)
            xs = [r.severity for r in line]
            if name == "recall":
                ys = [r.recall for r in line]
                bands = [r.recall_interval for r in line]
            else:
                ys = [_nan(r.delay_median) for r in line]
                bands = [r.delay_median_interval for r in line]
            (drawn,) = ax.plot(xs, ys, marker="o", label=f"fraction {fraction:g}")
            lows = [NAN if b is None else b[0] for b in bands]
            highs = [NAN if b is None else b[1] for b in bands]
            ax.fill_between(xs, lows, highs, alpha=0.2, color=drawn.get_color())
        ax.set_xlabel("severity")
        ax.set_ylabel(ylabel)
        if name == "recall":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
