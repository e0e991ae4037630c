"""A running experiment's fault plan: each route's faults, changed live and kept in a file.

A change (add, replace or remove one fault of one route) is checked by the same models
and shadow-only rules as the experiment file, and gives a new ``Config``: an invalid
change is refused with the field named and changes nothing. ``control.plan_file`` keeps
the plan across restarts; it also records the hash of the file's own plan it started
from, so an experiment file edited since wins over a stale plan file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from streamchaos.config.experiment import Config, shadow_only_problems
from streamchaos.config.holds import long_hold_problems
from streamchaos.config.load import format_validation_error
from streamchaos.config.route import Route
from streamchaos.errors import ConfigError
from streamchaos.faults.config import FaultConfig
from streamchaos.faults.registry import FaultSpec

log = logging.getLogger(__name__)


class NotFound(ConfigError):
    """No such route or fault."""

    status = 404  # what the control API answers


class _One(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faults: list[FaultSpec]  # a list, so errors read as the file's do (faults[0].fraction)


def parse_fault(body: Any) -> FaultConfig:
    """One fault, as the experiment file's ``faults:`` list holds it; errors name the field
    (``fraction: ...``)."""
    if not isinstance(body, dict):
        raise ConfigError("the fault must be a mapping (type, name, fraction, ...)")
    try:
        return _One.model_validate({"faults": [body]}).faults[0]
    except ValidationError as exc:
        text = format_validation_error(exc)
        lines = (line.removeprefix("faults[0].") for line in text.splitlines())
        raise ConfigError("\n".join(lines)) from exc


def plan_of(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Each route's faults as the JSON a plan file and the API show."""
    return {r.source: [fault_json(f) for f in r.faults] for r in cfg.routes}


def fault_json(fault: FaultConfig) -> dict[str, Any]:
    """The fault as given: its type and every setting that is not the default."""
    fields = type(fault).model_fields
    dumped = fault.model_dump(mode="json", exclude_defaults=True)
    # exclude_defaults keeps a field with a serializer (``where``) even when unset
    kept = {k: v for k, v in dumped.items() if not (v is None and fields[k].default is None)}
    return kept | {"type": fault.type}


def plan_hash(cfg: Config) -> str:
    """A short digest of the plan: two configs with the same faults share it."""
    text = json.dumps(plan_of(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def route_index(cfg: Config, source: str) -> int:
    for i, route in enumerate(cfg.routes):
        if route.source == source:
            return i
    raise NotFound(f"route {source!r}: no such route (routes: {_names(cfg)})")


def fault_index(cfg: Config, source: str, name: str) -> int:
    route = cfg.routes[route_index(cfg, source)]
    for i, fault in enumerate(route.faults):
        if fault.label == name:
            return i
    have = ", ".join(f.label for f in route.faults) or "none"
    raise NotFound(f"route {source!r}: no fault named {name!r} (faults: {have})")


def with_faults(cfg: Config, source: str, faults: list[FaultConfig]) -> Config:
    """``cfg`` with route ``source``'s faults replaced, checked as a loaded file is."""
    i = route_index(cfg, source)
    route = cfg.routes[i]
    data = {name: getattr(route, name) for name in type(route).model_fields} | {"faults": faults}
    try:
        new_route = Route.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc
    for j, fault in enumerate(faults):
        if fault.stop_on is not None and not cfg.alerts.enabled:
            raise ConfigError(
                f"faults[{j}].stop_on: needs alerts.prometheus or alerts.topic in the "
                "experiment file (where the bridge reads alerts)"
            )
    routes = [*cfg.routes[:i], new_route, *cfg.routes[i + 1 :]]
    new = cfg.model_copy(update={"routes": routes})
    problems = [
        p
        for p in shadow_only_problems(new) + long_hold_problems(new)
        if p.startswith(f"routes[{i}]")
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return new


def added(cfg: Config, source: str, fault: FaultConfig) -> Config:
    faults = cfg.routes[route_index(cfg, source)].faults
    return with_faults(cfg, source, [*faults, fault])


def replaced(cfg: Config, source: str, name: str, fault: FaultConfig) -> Config:
    j = fault_index(cfg, source, name)
    faults = list(cfg.routes[route_index(cfg, source)].faults)
    faults[j] = fault
    return with_faults(cfg, source, faults)


def removed(cfg: Config, source: str, name: str) -> Config:
    j = fault_index(cfg, source, name)
    faults = list(cfg.routes[route_index(cfg, source)].faults)
    del faults[j]
    return with_faults(cfg, source, faults)


# -- the plan file ------------------------------------------------------------------------


def save_plan(path: Path, base: Config, current: Config) -> None:
    """Write the plan atomically (a crash leaves the old file or the new one)."""
    doc = {
        "experiment": current.experiment,
        "base": plan_hash(base),
        "hash": plan_hash(current),
        "routes": plan_of(current),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_plan(path: Path, cfg: Config) -> Config | None:
    """The plan ``path`` keeps for ``cfg``'s experiment, or None when there is none or the
    experiment file's faults changed since it was written (the file wins then, logged).
    A plan that no longer fits the file (a route gone, an invalid fault) is a
    ``ConfigError`` naming the plan file and the field."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"control.plan_file {path}: cannot read: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("routes"), dict):
        raise ConfigError(f"control.plan_file {path}: not a plan (no 'routes' mapping)")
    if doc.get("experiment") != cfg.experiment:
        raise ConfigError(
            f"control.plan_file {path}: holds experiment {doc.get('experiment')!r}, not "
            f"{cfg.experiment!r} (point control.plan_file elsewhere, or delete the file)"
        )
    if doc.get("base") != plan_hash(cfg):
        log.warning(
            "control.plan_file %s: the experiment file's faults changed since it was "
            "written; the experiment file wins",
            path,
        )
        return None
    out = cfg
    for source, faults in doc["routes"].items():
        where = f"control.plan_file {path}: routes.{source}"
        if not isinstance(faults, list):
            raise ConfigError(f"{where}: must be a list of faults")
        parsed = []
        for j, body in enumerate(faults):
            try:
                parsed.append(parse_fault(body))
            except ConfigError as exc:
                raise ConfigError(f"{where}[{j}]: {exc}") from exc
        try:
            out = with_faults(out, source, parsed)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return out


def _names(cfg: Config) -> str:
    return ", ".join(r.source for r in cfg.routes)
