"""The units every part shares: a source record, what a fault did to it, a record in flight.

Transport-free: the bridge makes a ``Record`` of a consumed message only when a fault picked
it; every other record goes from the consumed message to its produce call untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

Headers = tuple[tuple[str, bytes | None], ...]


class Record(NamedTuple):
    """A consumed record. ``topic/partition/offset`` are its *source* coordinates.

    Immutable (a tuple), so a fault cannot change its input by accident; faults return
    new records with ``record.evolve(...)``. A tuple is also ~3x cheaper to build than a
    frozen dataclass, which matters on the path of every selected record.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: int = 0  # epoch ms, 0 = let the broker stamp it

    def evolve(self, **changes: Any) -> Record:
        return self._replace(**changes)

    def with_value(self, value: bytes | None) -> Record:
        """``evolve(value=...)`` in a fifth of the time (the value faults' common case)."""
        return Record._make((self[0], self[1], self[2], self[3], value, self[5], self[6]))

    @property
    def where(self) -> str:
        """``topic[partition]@offset``, how errors and logs name a record."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def from_message(cls, msg: Any) -> Record:
        ts_type, ts = msg.timestamp()
        headers = msg.headers()
        return cls._make(
            (
                msg.topic(),
                msg.partition(),
                msg.offset(),
                msg.key(),
                msg.value(),
                tuple(headers) if headers else (),
                ts if ts_type else 0,
            )
        )


Describe = Callable[[Any], dict[str, Any]]


def _as_is(note: Any) -> dict[str, Any]:
    return note


class Injection:
    """What a fault did to one record; becomes a ledger line once its output landed.

    ``effect``: ``modify`` (still emitted once), ``extra`` (one more emission) or ``drop``
    (not emitted). ``audit`` balances source offsets with exactly these three words.
    ``detail`` is made from ``note`` by ``describe`` only when asked (a ledger line is
    written): a bridge without a ledger never pays for it.
    """

    __slots__ = ("_describe", "effect", "fault", "note", "type")

    def __init__(
        self, fault: str, type_: str, effect: str, note: Any, describe: Describe = _as_is
    ) -> None:
        self.fault, self.type, self.effect = fault, type_, effect
        self.note, self._describe = note, describe

    @property
    def detail(self) -> dict[str, Any]:
        return self._describe(self.note)

    def __repr__(self) -> str:
        return f"Injection({self.fault!r}, {self.type!r}, {self.effect!r}, {self.detail!r})"


class Item:
    """A record in flight through a route's stages, with what earlier stages did to it."""

    __slots__ = ("injections", "record")

    def __init__(self, record: Record, injections: list[Injection] | None = None) -> None:
        self.record = record
        self.injections = injections if injections is not None else []

    def copy(self, record: Record | None = None) -> Item:
        """Another output of the same source record. It starts with no injections: what
        was done to the record before is ledgered once, with the original."""
        return Item(self.record if record is None else record)

    def __repr__(self) -> str:
        return f"Item({self.record!r}, {self.injections!r})"
