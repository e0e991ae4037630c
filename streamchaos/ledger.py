"""The ground-truth journal's format, in one place: the lines, their writer and reader.

One line per injection, per episode start/end and per run of records landed (lineage).
Faults do no I/O; they return injections and the bridge writes them here once their
output landed (with shadow coordinates) or, for drops, at once. The same line goes to a
JSON Lines file and/or a Kafka topic (``ledger_topic``: the outbox the bridge sends
from). Every line written is also counted in ``streamchaos_injections_total``, so
counters and ledger agree by construction. The evaluation side reads it back with
``read_ledger`` / ``read_ledger_topic``, which check every line against the same shapes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from streamchaos.codec import jsontext
from streamchaos.errors import ConfigError
from streamchaos.ledger_topic import TopicOutbox, topic_records

if TYPE_CHECKING:
    from streamchaos.record import Injection

log = logging.getLogger(__name__)

KINDS = ("injection", "episode_start", "episode_end", "lineage", "plan_change", "guardrail")
EFFECTS = ("modify", "extra", "drop")
PLAN_ACTIONS = ("add", "replace", "remove", "restore", "match")
_COORDS = ("topic", "partition", "offset")


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
        return self._queue(line, on_delivery)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# -- reading it back ---------------------------------------------------------------------


def read_ledger(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every entry of a JSON Lines ledger; a malformed line is a ``ConfigError`` naming it.

    An unparsable last line without a newline is a write torn by a crash: it is skipped with
    a warning, so the audit still runs after the crash it is meant to check.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ledger: {exc}") from exc
    named = [(f"{path}:{lineno}", line) for lineno, line in enumerate(lines, 1)]
    if named and lines[-1].strip() and not lines[-1].endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError as exc:
            log.warning("%s: skipping torn last line (%s)", named[-1][0], exc.msg)
            named.pop()
    return _entries(named)


def read_ledger_topic(
    bootstrap: str, topic: str, timeout: float = 60.0, experiment: str | None = None
) -> list[dict[str, Any]]:
    """Every entry of a ledger topic (the bridge's ``ledger.topic``: one JSON line per
    record, keyed by experiment), in order; a bad record is a ``ConfigError`` naming it.
    ``experiment``: only records with that key are parsed (a topic may hold several). No
    entry at all is a ``ConfigError`` too: auditing or scoring an empty journal (a
    mistyped topic or experiment) would pass for nothing."""
    named = []
    for where, value in topic_records(bootstrap, topic, timeout, experiment):
        try:
            named.append((where, value.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: cannot read ledger entry: {exc}") from exc
    entries = _entries(named)
    if not entries:
        of = f" of experiment {experiment!r}" if experiment is not None else ""
        raise ConfigError(f"{topic}: no ledger entries{of}")
    return entries


def _entries(named: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Ledger entries from (where, JSON text) pairs; ``where`` names a bad one."""
    entries = []
    for where, line in named:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON: {exc.msg}") from exc
        problem = _entry_problem(entry)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        entries.append(entry)
    return entries


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("kind") not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}, got {entry.get('kind')!r}"
    if entry["kind"] == "lineage":
        return _lineage_problem(entry)
    if entry["kind"] == "plan_change":
        detail = entry.get("detail")
        action = detail.get("action") if isinstance(detail, dict) else None
        if action not in PLAN_ACTIONS:
            return f"a plan_change needs detail.action, one of {', '.join(PLAN_ACTIONS)}"
        return None
    if entry["kind"] != "injection":
        return None
    src = entry.get("source")
    shape = [type(src.get(k)) for k in _COORDS] if isinstance(src, dict) else None
    if shape != [str, int, int]:
        return "source: an injection needs {topic: str, partition: int, offset: int}"
    if entry.get("effect") not in EFFECTS:
        return f"effect must be one of {', '.join(EFFECTS)}, got {entry.get('effect')!r}"
    return None


def _lineage_problem(entry: dict[str, Any]) -> str | None:
    src, dst = entry.get("source"), entry.get("shadow")
    segments = src.get("offsets") if isinstance(src, dict) else None
    ok = (
        isinstance(src, dict)
        and [type(src.get(k)) for k in ("topic", "partition")] == [str, int]
        and isinstance(segments, list)
        and all(isinstance(s, list) and [type(v) for v in s] == [int, int] for s in segments)
        and isinstance(dst, dict)
        and [type(dst.get(k)) for k in _COORDS] == [str, int, int]
    )
    if not ok:
        return (
            "a lineage line needs source {topic, partition, offsets: [[first, count], ...]} "
            "and shadow {topic, partition, offset}"
        )
    return None
