"""The ground-truth journal: one line per injection and per episode start/end.

Faults do no I/O; they return injections and the bridge writes them here once their
output landed (with shadow coordinates) or, for drops, at once. The same entry goes to a
JSON Lines file and/or a Kafka topic. Every line written is also counted in
``streamchaos_injections_total``, so counters and ledger agree by construction.

Lines for the topic wait in an outbox until the bridge's loop calls ``send``: most are
written from delivery callbacks, where ``produce`` must not wait for room in a full
queue. Each injection line can carry its own delivery callback, so the bridge keeps the
source offset uncommitted until its ground truth landed too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from streamchaos.codec import jsontext
from streamchaos.kafkatools import produce_with_room
from streamchaos.record import Injection

log = logging.getLogger(__name__)


def _encode(value: Any) -> str:
    """A line's JSON (orjson where it writes what ``json`` would; ``str`` of the rest)."""
    return jsontext.dumps(value, default=str).decode()


def coords(topic: str, partition: int, offset: int) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "offset": offset}


class Ledger:
    def __init__(
        self,
        experiment: str,
        path: Path | None,
        topic: str | None,
        producer: Any = None,
        keep: bool = False,
    ) -> None:
        self.experiment = experiment
        self.topic = topic
        self.producer = producer if topic else None
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        self.entries: list[dict[str, Any]] | None = [] if keep else None
        self.active = keep or self._file is not None or self.producer is not None
        self._heads: dict[tuple[str, str, str, str, str], str] = {}
        self._names: dict[str, str] = {}
        self._key = experiment.encode()
        self.outbox: list[tuple[bytes, Callable[[Any, Any], None]]] = []  # for the topic
        self.failed = 0  # episode lines the topic refused (injection lines fail their batch)

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

    def episode(
        self, route: str, fault: str, type_: str, kind: str, at_ms: int, detail: dict[str, Any]
    ) -> None:
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
            }
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
        if self._file is not None:
            self._file.write(line + "\n")
        if self.producer is None:
            return False
        self.outbox.append((line.encode(), on_delivery or self._delivered))
        return True

    def send(self, deadline: float | None = None) -> int:
        """Produce the outbox to the ledger topic (from the bridge's loop, never from a
        delivery callback), waiting out a full queue until ``deadline``
        (``time.monotonic()``; None: as long as it takes); what was not produced stays in
        the outbox. A line the client refuses is a failed delivery for its callback.
        Returns how many lines left the outbox."""
        sent = 0
        while self.outbox and self.producer is not None:
            outbox, self.outbox = self.outbox, []  # the polls below may queue more lines
            done = 0
            topic = self.topic or ""
            try:
                for value, callback in outbox:
                    if not produce_with_room(
                        self.producer,
                        topic,
                        value,
                        self._key,
                        deadline=deadline,
                        on_delivery=callback,
                    ):
                        break
                    done += 1
            finally:  # what was not handed over goes back, ahead of newer lines
                sent += done
                self.outbox[:0] = outbox[done:]
            if done < len(outbox):
                break
        return sent

    def _delivered(self, err: Any, msg: Any) -> None:
        """Delivery report of a line with no callback of its own (an episode's)."""
        if err is not None:
            self.failed += 1
            log.error("ledger entry not delivered to %s: %s", self.topic, err)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
