"""Loading an experiment file: YAML, the environment's overrides, errors by field path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from streamchaos.config.experiment import Config
from streamchaos.errors import ConfigError
from streamchaos.faults.registry import FAULTS

ENV_OVERRIDES = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "SCHEMA_REGISTRY_URL": ("schema_registry", "url"),
}


def apply_env(data: dict[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Connection settings from the environment win over the file (12-factor style)."""
    source: Mapping[str, str] = os.environ if env is None else env
    out = dict(data)
    for var, (section, key) in ENV_OVERRIDES.items():
        if source.get(var):
            block = out.get(section)
            merged = dict(block) if isinstance(block, dict) else {}
            merged[key] = source[var]
            out[section] = merged
    return out


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the field path."""
    lines = []
    for err in exc.errors(include_url=False):
        path = _path(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if path and _RELATIVE.match(msg):  # a model validator naming a field below it
            lines.append(f"{path}.{msg}")
        elif not path:
            lines.append(msg)
        else:
            lines.append(f"{path}: {msg}")
    return "\n".join(lines)


_RELATIVE = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    prev: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            isinstance(part, str)
            and not part.startswith("function-")
            and not (part in FAULTS and isinstance(prev, int))  # the union's tag, not a field
        ):
            out += f".{part}" if out else part
        prev = part
    return out


def config_from_dict(data: Any, *, env: Mapping[str, str] | None = None) -> Config:
    """Validate a plain mapping (what ``yaml.safe_load`` gives) into a ``Config``."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping at the top level")
    try:
        return Config.model_validate(apply_env(data, env))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from exc


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return an experiment file; raise ConfigError naming the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {exc}") from exc
    return config_from_dict(data, env=env)
