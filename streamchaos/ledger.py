"""The ground-truth journal's format, in one place: the lines and their writer (the reader,
``ledger_read``, is re-exported here).

One line per injection, per episode start/end and per run of records landed (lineage).
Faults do no I/O; they return injections and the bridge writes them here once their
output landed (with shadow coordinates) or, for drops, at once. The same line goes to a
JSON Lines file and/or a Kafka topic (``ledger_topic``: the outbox the bridge sends
from). Every line written is also counted in ``streamchaos_injections_total``, so
counters and ledger agree by construction. The evaluation side reads it back with
``read_ledger`` / ``read_ledger_topic``, which check every line against the same shapes.

Under ``delivery: exactly-once`` the topic's lines go in the bridge's transaction, and the
file's wait for it (``defer``): they are appended once it committed (``commit_lines``) and
dropped if it aborted, so the file never holds a line of a transaction that did not commit
(after a crash it may lack the last committed one's: the topic has them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from streamchaos.codec import jsontext
from streamchaos.ledger_read import (
    EFFECTS,
    KINDS,
    PLAN_ACTIONS,
    read_ledger,
    read_ledger_topic,
)
from streamchaos.ledger_topic import TopicOutbox

if TYPE_CHECKING:
    from streamchaos.record import Injection

log = logging.getLogger(__name__)

__all__ = [
    "EFFECTS",
    "KINDS",
    "PLAN_ACTIONS",
    "Ledger",
    "coords",
    "read_ledger",
    "read_ledger_topic",
]


def _encode(value: Any) -> str:
    """A line's JSON (orjson where it writes what ``json`` would; ``str`` of the rest)."""
    return jsontext.dumps(value, default=str).decode()


def coords(topic: str, partition: int, offset: int) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "offset": offset}


class Ledger(TopicOutbox):
    """Writes entries to a file, the topic's outbox and/or a kept list (``keep``)."""

    def __init__(
        self,
        experiment: str,
        path: Path | None,
        topic: str | None,
        producer: Any = None,
        keep: bool = False,
    ) -> None:
        super().__init__(topic, producer, experiment.encode())
        self.experiment = experiment
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        self.entries: list[dict[str, Any]] | None = [] if keep else None
        self._waiting: list[str] | None = None  # file lines of the open transaction
        self.active = keep or self._file is not None or self.producer is not None
        self._heads: dict[tuple[str, str, str, str, str], str] = {}
        self._names: dict[str, str] = {}

    def injection(
        self,
        route: str,
        inj: Injection,
        source: tuple[str, int, int],
        shadow: dict[str, Any] | None,
        status: str,
        at_ms: int,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> bool:
        """Record one injection; True when a line for the topic went to the outbox, with
        ``on_delivery`` (if given) as its delivery callback."""
        if not self.active:  # no file, topic or kept list: nothing to build
            return False
        if self.entries is not None:
            entry = self._head(route, inj, status) | {
                "source": coords(*source),
                "shadow": shadow,
                "at": at_ms,
                "detail": inj.detail,
            }
            return self.write(entry, on_delivery)
        # only lines to write: the JSON ``write`` makes of that entry, character for
        # character, at a third of the cost (a line per injection is on the hot path); the
        # part that repeats is encoded once per route, fault and status
        key = (route, inj.fault, inj.type, inj.effect, status)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = _encode(self._head(route, inj, status))[:-1]
        src = self._coords(*source)
        dst = (
            "null"
            if shadow is None
            else self._coords(shadow["topic"], shadow["partition"], shadow["offset"])
        )
        line = f'{head},"source":{src},"shadow":{dst},"at":{at_ms},"detail":{_encode(inj.detail)}}}'
        return self._emit(line, on_delivery)

    def _head(self, route: str, inj: Injection, status: str) -> dict[str, Any]:
        """The fields an injection entry starts with: all but where, when and details."""
        return {
            "experiment": self.experiment,
            "route": route,
            "fault": inj.fault,
            "type": inj.type,
            "kind": "injection",
            "effect": inj.effect,
            "status": status,
        }

    def _coords(self, topic: str, partition: int, offset: int) -> str:
        name = self._names.get(topic)
        if name is None:
            name = self._names[topic] = _encode(topic)
        return f'{{"topic":{name},"partition":{partition:d},"offset":{offset:d}}}'

    def lineage(
        self,
        route: str,
        source: tuple[str, int],
        shadow: tuple[str, int, int],
        segments: list[list[int]],
        at_ms: int,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> bool:
        """Where a run of records landed: shadow offsets from ``shadow``'s on hold, in
        order, the source records of ``segments`` ([first offset, count] each). Audits
        and joins trace every shadow record through these lines; True when a line for
        the topic went to the outbox."""
        if not self.active:
            return False
        topic, partition, offset = shadow
        entry = {
            "experiment": self.experiment,
            "route": route,
            "kind": "lineage",
            "source": {"topic": source[0], "partition": source[1], "offsets": segments},
            "shadow": coords(topic, partition, offset),
            "at": at_ms,
        }
        return self.write(entry, on_delivery)

    def event(
        self,
        route: str | None,
        fault: str | None,
        type_: str | None,
        kind: str,
        at_ms: int,
        detail: dict[str, Any],
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        """A line about a fault or the experiment, not a record: an episode's start or end,
        a ``plan_change`` (a fault changed on the running bridge, or the plan file's plan
        restored) or a ``guardrail`` that paused the experiment."""
        self.write(
            {
                "experiment": self.experiment,
                "route": route,
                "fault": fault,
                "type": type_,
                "kind": kind,
                "source": None,
                "shadow": None,
                "at": at_ms,
                "detail": detail,
            },
            on_delivery,
        )

    def write(
        self, entry: dict[str, Any], on_delivery: Callable[[Any, Any], None] | None = None
    ) -> bool:
        if self.entries is not None:
            self.entries.append(entry)
        if self._file is not None or self.producer is not None:
            return self._emit(_encode(entry), on_delivery)
        return False

    def _emit(self, line: str, on_delivery: Callable[[Any, Any], None] | None) -> bool:
        if self._waiting is not None:
            self._waiting.append(line + "\n")
        elif self._file is not None:
            self._file.write(line + "\n")
        return self._queue(line, on_delivery)

    def defer(self) -> None:
        """File lines wait for the transaction they belong to (exactly-once)."""
        self._waiting = []

    def commit_lines(self) -> None:
        """The transaction committed: its file lines are appended and flushed."""
        if self._waiting and self._file is not None:
            self._file.write("".join(self._waiting))
            self._file.flush()
        if self._waiting is not None:
            self._waiting.clear()

    def discard_lines(self) -> None:
        """The transaction aborted: its file lines go (its records will be read again)."""
        if self._waiting is not None:
            self._waiting.clear()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
