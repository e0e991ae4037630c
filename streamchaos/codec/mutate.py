"""Schema mutations for contract breaks: each returns a *new* schema (the input is kept).

A record schema's fields are looked up by name; ``base_type`` unwraps a nullable union
so callers can reason about the underlying type.
"""

from __future__ import annotations

import copy
from typing import Any

NUMERIC = {"int", "long", "float", "double"}
INT_RANGE = {"int": (-(1 << 31), (1 << 31) - 1), "long": (-(1 << 63), (1 << 63) - 1)}


def fields(schema: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return {}
    return {f["name"]: f for f in schema.get("fields", [])}


def base_type(ftype: Any) -> Any:
    """The non-null branch of ``["null", T]``; T itself otherwise."""
    if isinstance(ftype, list):
        branches = [t for t in ftype if t != "null"]
        return branches[0] if len(branches) == 1 else ftype
    return ftype


def type_name(ftype: Any) -> str:
    """'double', 'string', 'enum', 'record', ... ('timestamp-millis' for that logical type)."""
    t = base_type(ftype)
    if isinstance(t, dict):
        return str(t.get("logicalType") or t.get("type"))
    if isinstance(t, list):
        return "union"
    return str(t)


def as_string(value: Any) -> str:
    """A value as the string a type flip writes: booleans as JSON spells them."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def nullable(ftype: Any) -> bool:
    return ftype == "null" or (isinstance(ftype, list) and "null" in ftype)


def _edit(schema: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    new = copy.deepcopy(schema)
    for f in new["fields"]:
        if f["name"] == name:
            return new, f
    raise KeyError(name)


def drop_field(schema: Any, name: str) -> dict[str, Any]:
    new: dict[str, Any] = copy.deepcopy(schema)
    new["fields"] = [f for f in new["fields"] if f["name"] != name]
    return new


def rename_field(schema: Any, name: str, to: str) -> dict[str, Any]:
    new, f = _edit(schema, name)
    f["name"] = to
    f.pop("aliases", None)
    return new


def retype_field(schema: Any, name: str, to: Any) -> dict[str, Any]:
    new, f = _edit(schema, name)
    f["type"] = ["null", to] if nullable(f["type"]) else to
    f.pop("default", None)
    return new


def make_nullable(schema: Any, name: str) -> dict[str, Any]:
    new, f = _edit(schema, name)
    if not nullable(f["type"]):
        f["type"] = ["null", f["type"]]
        f["default"] = None
    return new


def add_enum_symbol(schema: Any, name: str, symbol: str) -> dict[str, Any]:
    new, f = _edit(schema, name)
    enum = base_type(f["type"])
    if not (isinstance(enum, dict) and enum.get("type") == "enum"):
        raise TypeError(f"field {name!r} is not an enum")
    if symbol not in enum["symbols"]:
        enum["symbols"] = [*enum["symbols"], symbol]
    return new


def int_fields(schema: Any) -> dict[str, str]:
    """Top-level fields holding an Avro int or long (nullable ones too): their kind."""
    kinds = {name: type_name(f["type"]) for name, f in fields(schema).items()}
    return {name: kind for name, kind in kinds.items() if kind in INT_RANGE}


def out_of_range(ints: dict[str, str], value: Any) -> str | None:
    """Why a record ``value`` cannot be written (fastavro would write an overflowed varint
    without a word): an integer beyond its field's int/long (``ints``: ``int_fields``)."""
    for name, kind in ints.items():
        v = value.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            low, high = INT_RANGE[kind]
            if not low <= v <= high:
                return f"{v} does not fit the Avro {kind} {name!r}"
    return None
