"""``streamchaos faults``: every fault type with its parameters, generated from the models.

Each parameter is printed with its YAML name (an alias where the model has one, e.g.
label's ``class``), its type and its true default (a list's ``[]``, not a placeholder);
a parameter holding models of its own (drift's ``features``) lists theirs beneath it, as
``features.<name>.<parameter>``.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from streamchaos.faults import FAULTS
from streamchaos.faults.base import FaultConfig
from streamchaos.schedule import Schedule
from streamchaos.units import parse_duration

COMMON = set(FaultConfig.model_fields)


def describe_faults() -> str:
    lines = ["Common to every fault:"]
    lines += _params(FaultConfig.model_fields, exclude={"type", "schedule"})
    lines.append("  schedule: always on unless given; its fields:")
    lines += _params(Schedule.model_fields, prefix="schedule.", exclude=set())
    for name, cls in FAULTS.items():
        lines.append("")
        lines.append(f"{name} — {cls.purpose}")
        own = {
            n
            for n, f in cls.Config.model_fields.items()
            if n != "type" and (n not in COMMON or f.default != FaultConfig.model_fields[n].default)
        }
        lines += _params(cls.Config.model_fields, exclude=set(cls.Config.model_fields) - own)
    return "\n".join(lines)


def _params(fields: dict[str, Any], exclude: set[str], prefix: str = "") -> list[str]:
    out = []
    for fname, field in fields.items():
        if fname in exclude:
            continue
        yaml_name = f"{prefix}{field.alias or fname}"
        desc = f"  — {field.description}" if field.description else ""
        out.append(f"  {yaml_name}: {_kind(field)} = {_default(field)}{desc}")
        nested = _nested_model(field.annotation)
        if nested is not None:  # e.g. features: {amount: {shift: …}}
            out += _params(nested.model_fields, set(), f"{yaml_name}.<name>.")
    return out


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "its defaults" if isinstance(value, BaseModel) else repr(value)
    if field.default is PydanticUndefined:
        return "required"
    return repr(field.default)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a ``dict[str, Model]`` parameter holds, if it does."""
    args = get_args(annotation)
    if len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1]
    return None


def _kind(field: Any) -> str:
    if any(getattr(m, "func", None) is parse_duration for m in field.metadata):
        return "duration" if field.default is not None else "duration | None"
    text = str(field.annotation).replace("typing.", "")
    if "parse_duration" in text:
        return "duration | None"
    for module in ("streamchaos.schedule.", "streamchaos.faults.drift."):
        text = text.replace(module, "")
    return text.replace("<class '", "").replace("'>", "")
