"""``streamchaos faults``: every fault type with its parameters, generated from the models,
and the README's fault table (``fault_table``), generated from the fault classes.

Each parameter is printed with its YAML name (an alias where the model has one, e.g.
label's ``class``), its type and its true default (a list's ``[]``, not a placeholder);
a parameter holding models of its own (drift's ``features``) lists theirs beneath it, as
``features.<name>.<parameter>``.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from streamchaos.faults.base import (
    DecodingFault,
    FaultConfig,
    HoldingFault,
    ObservingFault,
    ValueFault,
)
from streamchaos.schedule import Schedule
from streamchaos.units import parse_duration

COMMON = set(FaultConfig.model_fields)


_MODULE_PATH = re.compile(r"\b[a-z_]\w*(?:\.[a-z_]\w*)*\.(?=[A-Z])")
README_BEGIN = "<!-- written by streamchaos faults --markdown: begin -->"
README_END = "<!-- written by streamchaos faults --markdown: end -->"


def describe_faults() -> str:
    from streamchaos.faults.registry import FAULTS  # discovery imports this module too

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
    text = _MODULE_PATH.sub("", text)  # streamchaos.schedule.Shape -> Shape
    return text.replace("<class '", "").replace("'>", "")


def fault_table() -> str:
    """The README's fault table: one row per discovered fault, from its class."""
    from streamchaos.faults.registry import FAULTS

    rows = ["| type | simulates | modes | what it does to records |", "|---|---|---|---|"]
    for name, cls in FAULTS.items():
        mode = cls.Config.model_fields.get("mode")
        modes = ", ".join(f"`{m}`" for m in get_args(mode.annotation)) if mode else ""
        rows.append(f"| `{name}` | {cls.purpose} | {modes} | {_capabilities(cls)} |")
    return "\n".join(rows)


def _capabilities(cls: type) -> str:
    kinds = [
        text
        for base, text in (
            (HoldingFault, "holds records, releases them later"),
            (ObservingFault, "sees every record, picked or not"),
            (ValueFault, "decodes records and changes their values"),
        )
        if issubclass(cls, base)
    ]
    if issubclass(cls, DecodingFault) and not issubclass(cls, ValueFault):
        kinds.append("decodes records")
    return "; ".join(kinds) or "works on records without decoding them"


def with_fault_table(readme: str) -> str:
    """``readme`` with its generated fault-table block rewritten."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no {README_BEGIN} … {README_END} block")
    return f"{readme[: begin + len(README_BEGIN)]}\n{fault_table()}\n{readme[end:]}"
