"""What a long-hold record is (``bridge/long_hold.py`` writes and releases them, ``audit``
reads them): the topic it waits in, beside the shadow (``hold_topic``); the held record
with its ``Note`` in a header (when it is due, where it came from, what was done to it);
and the partition it waits in (``Lanes``)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from streamchaos.record import Injection, Item, Record

HEADER = "streamchaos-hold"  # on each hold record: when it is due, and what it is


def hold_topic(shadow: str, suffix: str) -> str:
    """Where a route's long holds wait: ``features.shadow`` → ``features.hold.shadow``.
    It ends with the shadow suffix, so the shadow-only rule covers it and no pattern
    route reads it."""
    return f"{shadow[: -len(suffix)]}.hold{suffix}"


class Note(NamedTuple):
    """What a hold record carries beside the record: when it is due (wall clock, epoch
    ms), the stage it resumes after, its source coordinates and timestamp (the hold
    record itself is stamped when held, so the topic's retention counts from then), and
    what was done to it."""

    due_ms: int
    after: str
    source: tuple[str, int, int]
    timestamp: int
    injections: list[tuple[str, str, str, dict[str, Any]]]

    def encode(self) -> bytes:
        return json.dumps(self._asdict(), separators=(",", ":"), default=str).encode()

    @classmethod
    def read(cls, msg: Any) -> Note | None:
        """The note of a hold record (None: not a hold record, or unreadable)."""
        raw = next((v for k, v in msg.headers() or () if k == HEADER), None)
        if raw is None:
            return None
        try:
            fields = json.loads(raw)
            topic, partition, offset = fields["source"]
            injections = [(f, t, e, dict(d)) for f, t, e, d in fields["injections"]]
            source = (str(topic), int(partition), int(offset))
            return cls(int(fields["due_ms"]), str(fields["after"]), source,
                       int(fields["timestamp"]), injections)  # fmt: skip
        except (TypeError, ValueError, KeyError):
            return None

    def item(self, msg: Any, early: bool = False) -> Item:
        """The record as it was held, at its source coordinates, with its injections;
        ``early``: released before its time (a pause, its fault removed), which the
        holding fault's ledger detail says."""
        headers = tuple((k, v) for k, v in msg.headers() or () if k != HEADER)
        record = Record(*self.source, msg.key(), msg.value(), headers, self.timestamp)
        injections = []
        for fault, type_, effect, detail in self.injections:
            if early and fault == self.after:
                detail = {**detail, "released_early": True}
            injections.append(Injection(fault, type_, effect, detail))
        return Item(record, injections)


class Lanes(NamedTuple):
    """A route's hold topic and the partition a hold waits in. Holds of one length (a
    fixed delay) spread by source partition: each partition's come due in the order held.
    Holds of several lengths go to lanes of equal width from the shortest to the longest,
    so a lane's records come due at most (longest − shortest) / partitions out of order."""

    topic: str
    shortest: float
    longest: float
    partitions: int

    def of(self, seconds: float, source_partition: int) -> int:
        if self.longest <= self.shortest:
            return source_partition % self.partitions
        share = (seconds - self.shortest) / (self.longest - self.shortest)
        return max(0, min(self.partitions - 1, int(share * self.partitions)))
