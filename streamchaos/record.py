"""The unit every fault sees: one source record, immutable, transport-free."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Injection:
    """What a fault did to one record; becomes a ledger line once its output landed.

    ``effect``: ``modify`` (still emitted once), ``extra`` (one more emission) or ``drop``
    (not emitted). ``audit`` balances source offsets with exactly these three words.
    """

    fault: str
    type: str
    effect: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Emission:
    """A record to produce (or ``None`` for a drop) and the injections it carries."""

    record: Record | None
    source: Record
    injections: list[Injection] = field(default_factory=list)
