"""Key tables: what a fault on one route knows of another route's records, by key.

A ``feedback`` fault on a labels route asks, for each label, about the latest record with
the same key on the joined route (the predictions): did it match the fault's ``when:``,
and where was it; a ``leak`` fault with ``label_from`` asks for the joined record's label.
What a table keeps of each joined record is what its ``Reader`` reads (a ``Predicate``
reads whether it matches, a ``FieldReader`` one field). The bridge keeps one ``KeyTable``
per such fault and feeds it every
record of the joined route as that route's records pass (``Joins.taps``), before the
route's own faults see them; both routes are read by the same consumer, so the table
holds what was consumed before the label, in consumption order.

Bounded: at most ``max_keys`` keys (the least recently written go first) and, with a
``window``, a joined record older than the label by more than it counts as absent.

>>> from confluent_kafka import Message
>>> from streamchaos.codec import JsonCodec
>>> from streamchaos.predicates import Predicate
>>> table = KeyTable(Predicate.of({"decision": "decline"}), window_ms=None, max_keys=10)
>>> value, at = b'{"decision": "decline"}', (1, 1000)
>>> msgs = [Message(topic="preds", partition=0, offset=7, key=b"k1", value=value, timestamp=at)]
>>> table.observe(msgs, 0, 1, JsonCodec())
>>> table.get(b"k1", 2000), table.get(b"k2", 2000)
(Joined(value=True, topic='preds', partition=0, offset=7, timestamp_ms=1000), None)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from streamchaos.predicates import MISSING, field_of, text
from streamchaos.units import Duration


class JoinSettings(BaseModel):
    """Which route a fault joins by key, and how much of it the table keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    route: str = Field(min_length=1, description="the route whose records are joined by key")
    window: Duration | None = Field(
        default=None, description="a joined record older than the record by more is absent"
    )
    max_keys: int = Field(default=1_000_000, ge=1, description="keys the join keeps, at most")


class Reader(Protocol):
    """What a table keeps of a joined record (``value``: decoded, when it needs it)."""

    needs_value: bool
    needs_headers: bool

    def test(
        self, value: Any, headers: dict[str, str | None], key: str | None, partition: int
    ) -> Any: ...


class FieldReader:
    """A joined record's field (``a.b`` reaches into a nested record); MISSING if absent."""

    needs_value, needs_headers = True, False

    def __init__(self, name: str) -> None:
        self.name = name

    def test(self, value: Any, headers: Any, key: Any, partition: int) -> Any:
        return field_of(value, self.name)


class JoinSpec(NamedTuple):
    """A fault's join, as its config gives it (``FaultConfig.joined``)."""

    settings: JoinSettings
    reader: Reader  # what the table keeps of each joined record
    field: str  # where the config names the joined route, for errors


class Joined(NamedTuple):
    """The joined record a key found: what the reader read of it, and its coordinates."""

    value: Any
    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    def coordinates(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class KeyTable:
    """The latest record per key of the joined route, as far as one fault needs it."""

    def __init__(self, reader: Reader, window_ms: int | None, max_keys: int) -> None:
        self.reader, self.window_ms, self.max_keys = reader, window_ms, max_keys
        self._rows: OrderedDict[bytes, Joined] = OrderedDict()
        self.evicted = 0  # keys pushed out by max_keys
        self.evictions_counted = 0  # of those, in the metrics already
        self.unreadable = 0  # joined records whose value could not be decoded

    def __len__(self) -> int:
        return len(self._rows)

    def observe(
        self,
        msgs: Sequence[Any],
        start: int,
        end: int,
        codec: Any,
        on_unreadable: Callable[[str], None] | None = None,
    ) -> None:
        """Records ``msgs[start:end]`` of the joined route (consumed messages); a value that
        cannot be read is reported to ``on_unreadable`` (the route's undecodable count)."""
        rows, reader = self._rows, self.reader
        for msg in msgs[start:end]:
            key = msg.key()
            if key is None:
                continue  # nothing can join on it
            try:
                value = codec.decode(msg.value()).value if reader.needs_value else None
                headers: dict[str, str | None] = {}
                if reader.needs_headers:
                    for name, data in msg.headers() or ():
                        headers.setdefault(name, text(data))
                read = reader.test(value, headers, text(key), msg.partition())
            except Exception as exc:  # an unreadable joined record: read as absent
                self.unreadable += 1
                read = MISSING
                if on_unreadable is not None:
                    on_unreadable(getattr(exc, "reason", "join_error"))
            ts_type, ts = msg.timestamp()
            ts = ts if ts_type and ts > 0 else 0  # 0: not known (no window test)
            rows[key] = Joined(read, msg.topic(), msg.partition(), msg.offset(), ts)
            rows.move_to_end(key)
            if len(rows) > self.max_keys:
                rows.popitem(last=False)
                self.evicted += 1

    def get(self, key: bytes | None, at_ms: int) -> Joined | None:
        """The joined record of ``key``; None when there is none, or (with a window) when
        it is older than ``at_ms`` (the label's timestamp, 0 = unknown) by more than it."""
        if key is None:
            return None
        row = self._rows.get(key)
        if row is None:
            return None
        window, then = self.window_ms, row.timestamp_ms
        if window is not None and at_ms and then and at_ms - then > window:
            return None
        return row


class Joins:
    """The bridge's key tables: one per (route, fault) that joins, fed by the joined
    route's records (``taps``: the same list object the route's state holds, so a table
    made later, by a fault added live, is fed from then on)."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], KeyTable] = {}
        self._taps: dict[str, list[KeyTable]] = {}

    def taps(self, route: str) -> list[KeyTable]:
        """The tables ``route``'s records feed."""
        return self._taps.setdefault(route, [])

    def get(self, route: str, fault: str) -> KeyTable | None:
        return self._tables.get((route, fault))

    def table(self, route: str, fault: str, spec: JoinSpec) -> KeyTable:
        """The table of ``fault`` on ``route``, joining ``spec``'s route: made on first ask."""
        table = self._tables.get((route, fault))
        if table is None:
            window = spec.settings.window
            window_ms = None if window is None else round(window * 1000)
            table = KeyTable(spec.reader, window_ms, spec.settings.max_keys)
            self._tables[(route, fault)] = table
            self.taps(spec.settings.route).append(table)
        return table

    def forget(self, route: str, fault: str) -> None:
        """The fault is gone (or replaced: its successor gets a table of its own)."""
        table = self._tables.pop((route, fault), None)
        if table is not None:
            for taps in self._taps.values():
                if any(t is table for t in taps):
                    taps[:] = [t for t in taps if t is not table]
