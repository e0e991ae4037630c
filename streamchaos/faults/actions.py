"""What a fault answers for each record it picked: one small typed action per pick.

``KEEP`` (pass on unchanged), ``Replace`` (a changed record), ``ReplaceValue`` (a changed
value, the rest as it came), ``Drop``, ``Extra`` (the record and copies after it) and
``Hold`` (the fault keeps the item; it comes back later as a ``Release`` from ``due`` or
``drain``), or ``Defer`` (the record leaves the run for the bridge's long-hold store, which
gives it back when due, after restarts too: ``until`` says when). The engine applies an
action with ``apply``, which gives the items that continue, in order, in the picked
record's place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

from streamchaos.record import Injection, Item, Record


class Release(NamedTuple):
    """A held item coming back, with the injection that says what holding it did."""

    item: Item
    injection: Injection

    def resume(self) -> Item:
        self.item.injections.append(self.injection)
        return self.item


class Action(ABC):
    __slots__ = ()
    until: float | None = None  # ``Defer``: when the long-hold store gives the record back

    @abstractmethod
    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        """The items that continue in ``item``'s place; a dropped item goes to ``dropped``
        (its injections are ledgered at once: it has no output to wait for)."""


class Keep(Action):
    __slots__ = ()

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        return [item]

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


class Replace(Action):
    __slots__ = ("injection", "record")

    def __init__(self, record: Record, injection: Injection) -> None:
        self.record, self.injection = record, injection

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        item.replace(self.record)
        item.injections.append(self.injection)
        return [item]

    def __repr__(self) -> str:
        return f"Replace({self.record!r}, {self.injection!r})"


class ReplaceValue(Action):
    """The value changed, nothing else: the record's other parts stay as they came."""

    __slots__ = ("injection", "value")

    def __init__(self, value: bytes, injection: Injection) -> None:
        self.value, self.injection = value, injection

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        item.replace_value(self.value)
        item.injections.append(self.injection)
        return [item]

    def __repr__(self) -> str:
        return f"ReplaceValue({self.value!r}, {self.injection!r})"


class Drop(Action):
    __slots__ = ("injection",)

    def __init__(self, injection: Injection) -> None:
        self.injection = injection

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        item.injections.append(self.injection)
        dropped.append(item)
        return []

    def __repr__(self) -> str:
        return f"Drop({self.injection!r})"


class Extra(Action):
    """The record passes, followed by ``copies`` (items of the same source record, each
    with the injection that made it)."""

    __slots__ = ("copies",)

    def __init__(self, copies: list[Release]) -> None:
        self.copies = copies

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        return [item, *(copy.resume() for copy in self.copies)]

    def __repr__(self) -> str:
        return f"Extra({self.copies!r})"


class Hold(Action):
    """The fault keeps the item; holding it may have released others (a size limit, a
    full window), which continue in its place."""

    __slots__ = ("released",)

    def __init__(self, released: list[Release] | None = None) -> None:
        self.released = released or []

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        return [release.resume() for release in self.released]

    def __repr__(self) -> str:
        return f"Hold({self.released!r})" if self.released else "HOLD"


HOLD = Hold()


class Defer(Action):
    """The record waits in the bridge's long-hold store (a hold longer than its in-memory
    horizon) until ``until``. The store carries the injection and resumes the record at
    the stages after this one."""

    __slots__ = ("injection", "until")

    def __init__(self, until: float, injection: Injection) -> None:
        self.until, self.injection = until, injection

    def apply(self, item: Item, dropped: list[Item]) -> list[Item]:
        item.injections.append(self.injection)
        return []

    def __repr__(self) -> str:
        return f"Defer({self.until!r}, {self.injection!r})"
