"""Avro record schemas for the tests, a field per keyword: ``avro_record("F", x="double")``."""

from __future__ import annotations

from typing import Any


def avro_record(name: str, /, namespace: str | None = None, **fields: Any) -> dict[str, Any]:
    """A record schema's JSON; a field's type is a name, a union list or a nested type."""
    schema: dict[str, Any] = {"type": "record", "name": name}
    if namespace is not None:
        schema["namespace"] = namespace
    schema["fields"] = [{"name": field, "type": kind} for field, kind in fields.items()]
    return schema
