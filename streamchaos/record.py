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
    detail: dict[str, Any] = note
    return detail


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
    """A record in flight through a route's stages, with what earlier stages did to it.

    An item made from a consumed message keeps the message and builds its ``Record``
    only when something reads it: a record a fault holds (``delay``), or whose value alone
    it changes (``corrupt``, ``drift``), goes from the message to its produce call with
    no ``Record`` made.
    """

    __slots__ = ("_record", "injections", "message", "new_value")

    def __init__(
        self, record: Record | None, injections: list[Injection] | None = None, message: Any = None
    ) -> None:
        self._record = record
        self.message = message  # the consumed message, while the content is still its own
        self.new_value: bytes | None = None  # the message's, changed (``message`` is set)
        self.injections = injections if injections is not None else []

    @classmethod
    def of(cls, message: Any) -> Item:
        return cls(None, None, message)

    @property
    def record(self) -> Record:
        record = self._record
        if record is None:
            record = self._record = Record.from_message(self.message)
            if self.new_value is not None:
                record = self._record = record.with_value(self.new_value)
        return record

    @property
    def value(self) -> bytes | None:
        if self._record is None:
            value: bytes | None = self.message.value() if self.new_value is None else self.new_value
            return value
        return self._record.value

    @property
    def as_consumed(self) -> bool:
        """Nothing changed it: the consumed message, as it came."""
        return self.message is not None and self.new_value is None and not self.injections

    def replace(self, record: Record) -> None:
        """A fault changed the record: from now on its content is ``record``'s."""
        self._record, self.message, self.new_value = record, None, None

    def replace_value(self, value: bytes) -> None:
        """A fault changed the value alone."""
        if self.message is not None:
            self.new_value = value
            if self._record is not None:
                self._record = self._record.with_value(value)
        else:
            self._record = self.record.with_value(value)

    @property
    def offset(self) -> int:
        if self._record is None:
            offset: int = self.message.offset()
            return offset
        return self._record.offset

    @property
    def partition(self) -> int:
        if self._record is None:
            partition: int = self.message.partition()
            return partition
        return self._record.partition

    @property
    def timestamp(self) -> int:
        """Its timestamp, epoch ms (-1: it has none)."""
        if self._record is None:
            kind, ts = self.message.timestamp()
            return int(ts) if kind else -1
        return self._record.timestamp or -1

    @property
    def source(self) -> tuple[str, int, int]:
        """The source record's topic, partition and offset."""
        msg, rec = self.message, self._record
        if rec is None:
            return msg.topic(), msg.partition(), msg.offset()
        return rec.topic, rec.partition, rec.offset

    @property
    def key(self) -> bytes | None:
        if self._record is None:
            key: bytes | None = self.message.key()
            return key
        return self._record.key

    def copy(self, record: Record | None = None) -> Item:
        """Another output of the same source record. It starts with no injections: what
        was done to the record before is ledgered once, with the original."""
        if record is not None:
            return Item(record)
        twin = Item(self._record, None, self.message)
        twin.new_value = self.new_value
        return twin

    def __repr__(self) -> str:
        return f"Item({self.record!r}, {self.injections!r})"
