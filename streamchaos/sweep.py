"""``streamchaos sweep``: a detector's recall and delay over a grid of severity × fraction.

A grid file names a base experiment (the clean pipeline), a fault template whose values
``"{severity}"`` take each severity, the axes, how many repeats, and where the detector's
alerts are read (a file, a topic or Prometheus, as ``score`` reads them). The sweep runs the
bridge live once: every cell (severity, fraction, repeat) is one episode of ``episode``
seconds after ``gap`` seconds without faults, in an order shuffled per repeat (seeded), so
time of day and warm-up do not line up with severity. Then it scores the run once and
reports per (severity, fraction) (``evaluation.sweep_report``). It drives the bridge, so
it lives beside it, not in ``evaluation``.

>>> grid = SweepGrid(experiment="x.yaml", fault={"type": "drift",
...     "features": {"amount": {"shift": "{severity}"}}}, severity=[1, 2], fraction=[0.5],
...     repeats=1, episode=5, gap=3, max_delay=2, alerts={"file": "a.jsonl"})
>>> [(c.name, c.start) for c in plan_cells(grid)]
[('sweep-s1-f0.5-r0', 3.0), ('sweep-s2-f0.5-r0', 11.0)]
>>> fill(grid.fault, 2)["features"]
{'amount': {'shift': 2}}
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamchaos.errors import ConfigError
from streamchaos.evaluation.scorecard import Scorecard
from streamchaos.evaluation.sweep_report import Cell
from streamchaos.ledger import read_ledger
from streamchaos.units import Duration

PLACEHOLDER = "{severity}"


class AlertSource(BaseModel):
    """Where the detector's alerts are read after the run (exactly one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str | None = None
    topic: str | None = None
    prometheus: str | None = None
    step: float = Field(default=5.0, gt=0, description="Prometheus query step (s)")

    @model_validator(mode="after")
    def _one(self) -> AlertSource:
        if sum(x is not None for x in (self.file, self.topic, self.prometheus)) != 1:
            raise ValueError("give exactly one of file, topic, prometheus")
        return self


class SweepGrid(BaseModel):
    """A grid file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    experiment: str = Field(min_length=1, description="the base experiment file")
    route: str | None = Field(default=None, description="the route faulted; default: the only")
    fault: dict[str, Any] = Field(description='the fault; values "{severity}" take each one')
    severity: list[float] = Field(min_length=1)
    fraction: list[float] = Field(min_length=1)
    repeats: int = Field(default=3, ge=1, le=1000)
    episode: Duration = Field(default=10.0, gt=0)
    gap: Duration = Field(default=10.0, gt=0, description="clean time before each cell")
    max_delay: Duration = Field(default=5.0, ge=0, description="D of the scoring (< gap)")
    recall_target: float = Field(default=0.9, gt=0, le=1)
    seed: int = 0
    alerts: AlertSource
    out: str = "out/sweep"

    @model_validator(mode="after")
    def _axes(self) -> SweepGrid:
        if any(not 0 < f <= 1 for f in self.fraction):
            raise ValueError("fraction: each must be in (0, 1]")
        if len(set(self.severity)) != len(self.severity):
            raise ValueError("severity: each value once")
        if len(set(self.fraction)) != len(self.fraction):
            raise ValueError("fraction: each value once")
        if fill(self.fault, 0.0) == self.fault:
            raise ValueError(f'fault: no value is "{PLACEHOLDER}", so severity changes nothing')
        if self.max_delay >= self.gap:
            raise ValueError(
                "max_delay: must be shorter than gap, or a late alert would count for the "
                "next cell and no gap time would be clean (false alarms)"
            )
        for key in ("fraction", "schedule", "name"):
            if key in self.fault:
                raise ValueError(f"fault.{key}: set by the sweep for each cell")
        return self

    @property
    def duration(self) -> float:
        """Seconds from the bridge's start to the last cell's end."""
        cells = len(self.severity) * len(self.fraction) * self.repeats
        return cells * (self.gap + self.episode)


def plan_cells(grid: SweepGrid) -> list[Cell]:
    """Every (severity, fraction, repeat), each repeat's cells shuffled with the seed."""
    cells, t = [], 0.0
    for repeat in range(grid.repeats):
        pairs = [(s, f) for s in grid.severity for f in grid.fraction]
        random.Random(grid.seed * 1000 + repeat).shuffle(pairs)
        for severity, fraction in pairs:
            t += grid.gap
            cells.append(Cell(severity, fraction, repeat, t))
            t += grid.episode
    return cells


def fill(template: Any, severity: float) -> Any:
    """The fault template with every value ``"{severity}"`` replaced by the number."""
    if template == PLACEHOLDER:
        return severity
    if isinstance(template, dict):
        return {k: fill(v, severity) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, severity) for v in template]
    return template


def experiment_for(grid: SweepGrid, base: dict[str, Any], cells: list[Cell]) -> dict[str, Any]:
    """The base experiment with the cells as the faulted route's faults (its own dropped:
    the base is the clean pipeline); its ledger file is ``<out>/sweep-ledger.jsonl``."""
    raw = copy.deepcopy(base)
    if raw.get("clock", "wall") != "wall":
        raise ConfigError(
            f"{grid.experiment}: clock: a sweep runs live, on the bridge's clock (its cells "
            "are timed by it); remove clock and start_at"
        )
    routes = raw.get("routes") or []
    if grid.route is None and len(routes) != 1:
        raise ConfigError("route: the experiment has several routes; name the one to fault")
    route = next((r for r in routes if grid.route in (None, r.get("source"))), None)
    if route is None:
        raise ConfigError(f"route: {grid.route!r} is not a route of {grid.experiment}")
    # the sweep's own ground truth, never the base experiment's file or topic
    raw["ledger"] = {"path": str(ledger_of(grid))}
    route["faults"] = [
        fill(grid.fault, c.severity)
        | {
            "name": c.name,
            "fraction": c.fraction,
            "schedule": {"start": c.start, "duration": grid.episode},
        }
        for c in cells
    ]
    return raw


def ledger_of(grid: SweepGrid) -> Path:
    """Where the sweep's bridge writes its ledger."""
    return Path(grid.out) / "sweep-ledger.jsonl"


def load_grid(path: str | Path) -> SweepGrid:
    from pydantic import ValidationError

    from streamchaos.config.load import format_validation_error

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return SweepGrid.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


class SweepRun(NamedTuple):
    grid: SweepGrid
    cells: list[Cell]
    ledger: list[dict[str, Any]]
    start: float  # epoch seconds
    end: float
    bootstrap_servers: str  # the experiment's, where an alerts topic is read


def run_sweep(grid: SweepGrid, env: dict[str, str] | None = None) -> SweepRun:
    """Bridge live until the last cell's end plus ``max_delay``; the ledger of the run."""
    from streamchaos.bridge import Bridge
    from streamchaos.config import config_from_dict

    base = yaml.safe_load(Path(grid.experiment).read_text(encoding="utf-8"))
    if not isinstance(base, dict):
        raise ConfigError(f"{grid.experiment}: the experiment must be a mapping")
    cells = plan_cells(grid)
    cfg = config_from_dict(experiment_for(grid, base, cells), env=env)
    ledger = ledger_of(grid)  # one sweep, one ledger: not appended to an older one
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.unlink(missing_ok=True)
    bridge = Bridge(cfg, tune_gc=True).start()
    try:
        bridge.wait_until_assigned(120)
        start = bridge.started_at or time.time()
        deadline = time.monotonic() + grid.duration + grid.max_delay
        while time.monotonic() < deadline and bridge.exit_code is None:
            time.sleep(0.2)
    finally:
        code = bridge.stop()
    if code != 0:
        raise ConfigError(f"the bridge ended with exit code {code}; see its log")
    # the scored span: from the first gap to the last cell's end plus D (not the bridge's
    # start-up or shutdown, when the detector cannot alarm on anything)
    first, last = cells[0].start - grid.gap, cells[-1].start + grid.episode + grid.max_delay
    entries = read_ledger(ledger)  # the file, not lines kept in memory
    bootstrap = cfg.kafka.bootstrap_servers
    return SweepRun(grid, cells, entries, start + first, start + last, bootstrap)


def score_sweep(run: SweepRun) -> Scorecard:
    """The run's scorecard: the cells' episodes against the detector's alerts."""
    from streamchaos.evaluation.episodes import episodes_from_ledger
    from streamchaos.evaluation.scorer import load_alerts
    from streamchaos.evaluation.scoring import score

    names = {c.name for c in run.cells}
    episodes = [e for e in episodes_from_ledger(run.ledger) if e.fault in names]
    source = run.grid.alerts
    alerts = load_alerts(
        episodes,
        path=source.file,
        topic=source.topic,
        prometheus=source.prometheus,
        bootstrap_servers=run.bootstrap_servers,
        pad=run.grid.max_delay,
        step=source.step,
    )
    return score(
        episodes, alerts, max_delay=run.grid.max_delay, run_start=run.start, run_end=run.end
    )
