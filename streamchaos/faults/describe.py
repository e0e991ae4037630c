"""``streamchaos faults``: every fault type with its parameters, generated from the models."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from streamchaos.faults import FAULTS
from streamchaos.faults.base import FaultConfig
from streamchaos.units import parse_duration

COMMON = set(FaultConfig.model_fields)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "always on"
    if field.default is PydanticUndefined:
        return "required"
    return repr(field.default)


def describe_faults() -> str:
    lines = ["Common to every fault:"]
    lines += _params(FaultConfig.model_fields, exclude={"type"})
    lines.append("  schedule: start, duration, shape (step|linear|sigmoid), ramp, every, on")
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


def _params(fields: dict[str, Any], exclude: set[str]) -> list[str]:
    out = []
    for fname, field in fields.items():
        if fname in exclude:
            continue
        desc = f"  — {field.description}" if field.description else ""
        kind = _annotation(field.annotation)
        if any(getattr(m, "func", None) is parse_duration for m in field.metadata):
            kind = "duration"
        out.append(f"  {fname}: {kind} = {_default(field)}{desc}")
    return out


def _annotation(ann: Any) -> str:
    text = str(ann).replace("typing.", "")
    if "parse_duration" in text:
        return (
            "duration | None" if "Optional" in text or "None" in text.split("]")[-1] else "duration"
        )
    text = text.replace("streamchaos.schedule.", "")
    return text.replace("<class '", "").replace("'>", "")
