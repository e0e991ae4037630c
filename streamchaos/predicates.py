"""``where:``: which records a fault may touch, by value field, header, key or partition.

Each entry names what it tests and how: a bare value means equal, else a mapping of
``eq``, ``in``, ``lt``/``le``/``gt``/``ge`` (numbers only) and ``regex`` (searched in
the text), all of which must hold. Names: ``key`` (the key as UTF-8 text),
``partition``, ``header.NAME`` (the first such header, as text) or a value field
(``a.b`` reaches into a nested record). A record matches when every entry holds; a field
it lacks, a value it cannot decode, or a type a test cannot compare never matches.

The bridge draws the fraction first, over every record, and tests the predicate only on
the records drawn: ``fraction`` is the share of the matching records a fault touches.

>>> p = Predicate.of({"amount": {"gt": 100}, "header.tenant": "acme"})
>>> p.test({"amount": 250.0}, {"tenant": "acme"}, None, 0), p.test({"amount": 5}, {}, None, 0)
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a limit is a number, not true or false")
    return value


Scalar = str | int | float | bool | None
StrictFloat = Annotated[float, BeforeValidator(_no_bool)]


class Test(BaseModel):
    """How one name is tested; every test given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    eq: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    lt: StrictFloat | None = None
    le: StrictFloat | None = None
    gt: StrictFloat | None = None
    ge: StrictFloat | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _some(self) -> Test:
        if not self.model_fields_set:
            raise ValueError("give at least one of eq, in, lt, le, gt, ge, regex")
        if "in_" in self.model_fields_set and self.in_ is None:
            raise ValueError("in: a list of values")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r}: {exc}") from exc
        return self


Where = dict[str, Test | Scalar | list[Scalar]]
"""What ``where:`` holds: a name → a ``Test``, a bare value (equal) or a list (in)."""

Check = Callable[[Any], bool]


def _check(test: Any, textual: bool) -> Check:
    """One name's test as a function of the value found (``MISSING`` when none);
    ``textual``: the value is a header's or a key's text."""
    if isinstance(test, Mapping):  # not validated yet (doctests, callers of ``of``)
        test = Test.model_validate(test)
    if not isinstance(test, Test):
        test = Test.model_validate({"in": test} if isinstance(test, list) else {"eq": test})
    same = _same_text if textual else _same
    checks: list[Check] = []
    if "eq" in test.model_fields_set:
        eq = test.eq
        checks.append(lambda v: same(v, eq))
    if test.in_ is not None:
        among = test.in_
        checks.append(lambda v: any(same(v, x) for x in among))
    for op, limit in (("lt", test.lt), ("le", test.le), ("gt", test.gt), ("ge", test.ge)):
        if limit is not None:
            checks.append(_compare(op, limit))
    if test.regex is not None:
        pattern = re.compile(test.regex)
        checks.append(lambda v: isinstance(v, str) and pattern.search(v) is not None)
    return lambda v: v is not MISSING and all(c(v) for c in checks)


def _same(v: Any, x: Any) -> bool:
    """A value field equals the config's value: numbers by value (1 == 1.0; true is not
    1), text as text, null as null; a decimal as its number, a UUID as its text."""
    if isinstance(v, Decimal):
        v = float(v)
    elif isinstance(v, UUID):
        v = str(v)
    if isinstance(v, bool) or isinstance(x, bool) or v is None or x is None:
        return v is x
    if isinstance(v, str) or isinstance(x, str):
        return isinstance(v, str) and isinstance(x, str) and v == x
    return isinstance(v, int | float) and isinstance(x, int | float) and v == x


def _same_text(v: str | None, x: Any) -> bool:
    """A header's or a key's text equals the config's value as written in YAML: ``7``,
    ``7.0`` and ``"7"`` all match the text 7; ``true`` matches true (any case); null
    matches only a header without a value."""
    if v is None or x is None:
        return v is x
    if isinstance(x, bool):
        return v.lower() == str(x).lower()
    if isinstance(x, int | float):
        try:
            return float(v) == x
        except ValueError:
            return False
    return bool(v == x)


def _compare(op: str, limit: float) -> Check:
    def check(v: Any) -> bool:
        if isinstance(v, str):  # a header or key: its text, when it is a number
            try:
                v = float(v)
            except ValueError:
                return False
        elif isinstance(v, Decimal):
            v = float(v)
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v:  # v != v: NaN
            return False
        return {"lt": v < limit, "le": v <= limit, "gt": v > limit, "ge": v >= limit}[op]

    return check


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Predicate:
    """A ``where:`` compiled once: ``test`` on one record's parts."""

    def __init__(self, entries: list[tuple[str, str, Check]]) -> None:
        self.entries = entries  # (kind, name, check); kind: key|partition|header|field
        self.needs_value = any(kind == "field" for kind, _, _ in entries)
        self.needs_headers = any(kind == "header" for kind, _, _ in entries)

    @classmethod
    def of(cls, where: Mapping[str, Any]) -> Predicate:
        entries = []
        for name, test in where.items():
            if name == "key":
                entries.append(("key", name, _check(test, textual=True)))
            elif name == "partition":
                entries.append(("partition", name, _check(test, textual=False)))
            elif name.startswith("header."):
                entries.append(("header", name.removeprefix("header."), _check(test, True)))
            else:
                entries.append(("field", name, _check(test, textual=False)))
        return cls(entries)

    def test(
        self, value: Any, headers: Mapping[str, str | None], key: str | None, partition: int
    ) -> bool:
        """Whether a record with these parts matches (``value``: decoded, a mapping)."""
        for kind, name, check in self.entries:
            if kind == "key":
                found: Any = MISSING if key is None else key
            elif kind == "partition":
                found = partition
            elif kind == "header":
                found = headers.get(name, MISSING)
            else:
                found = field_of(value, name)
            if not check(found):
                return False
        return True


def field_of(value: Any, name: str) -> Any:
    """The field ``name`` (``a.b``: nested) of a decoded value, or ``MISSING``."""
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def shown(where: Mapping[str, Any]) -> dict[str, Any]:
    """``where:`` as the config gave it (for ledger details)."""
    return {
        k: v.model_dump(by_alias=True, exclude_unset=True) if isinstance(v, Test) else v
        for k, v in where.items()
    }


def text(data: bytes | str | None) -> str | None:
    """A key or header value as text (bytes decoded as UTF-8, bad bytes replaced)."""
    if data is None or isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", "replace")
