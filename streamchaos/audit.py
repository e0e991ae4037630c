"""Reconcile a source topic, its shadow topic and the ledger: every source offset accounted for.

Each shadow record is traced to the source offset whose processing emitted it, by the
ledger's lineage lines (or its lineage header, when the bridge wrote one); the ledger says
how injections changed that count: ``found == 1 + extra - drop`` (failed
``extra`` emissions not counted). A failed ``modify`` never landed, so the offset may be one
short unless a replay after a restart landed it: both balance, listed as *known delivery
failures*, never as unexplained loss.

``reconcile`` is pure (plain data in, ``AuditReport`` out); ``audit`` does the Kafka reads.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamchaos.errors import BridgeError, ConfigError
from streamchaos.kafkatools import read_all, unique_name
from streamchaos.lineage import LINEAGE_HEADER, Lineage, parse_origin

log = logging.getLogger(__name__)

EFFECTS = ("modify", "extra", "drop")
KINDS = ("injection", "episode_start", "episode_end", "lineage")
MAX_LISTED = 20
_COORDS = ("topic", "partition", "offset")
Origin = tuple[int, int]  # (partition, offset) of a source record
_READER = {
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
}


class Discrepancy(NamedTuple):
    partition: int
    offset: int
    expected: int
    actual: int


class KnownFailure(NamedTuple):
    partition: int
    offset: int
    fault: str
    effect: str


@dataclass
class AuditReport:
    """What the audit found; not ``ok`` on any unexplained loss, surplus or ledger conflict."""

    source_topic: str
    shadow_topic: str = "?"
    source_records: int = 0
    shadow_records: int = 0
    shadow_ignored: int = 0  # lineage outside the audited offsets, or to another topic
    unattributed: int = 0  # shadow records no lineage line or header explains
    injections: Counter[tuple[str, str]] = field(default_factory=Counter)  # (type, effect)
    episodes: int = 0
    ledger_ignored: int = 0  # other topics or experiments, offsets outside the range
    missing: list[Discrepancy] = field(default_factory=list)
    unexpected_duplicates: list[Discrepancy] = field(default_factory=list)  # incl. drops found
    ledger_conflicts: list[Discrepancy] = field(default_factory=list)  # more drops than emits
    known_failures: list[KnownFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        problems = self.missing or self.unexpected_duplicates or self.ledger_conflicts
        return not (problems or self.unattributed)

    def summary(self) -> str:
        """A few lines for a terminal, then at most ``MAX_LISTED`` itemised problems."""
        kinds = ", ".join(f"{t}/{e} {n}" for (t, e), n in sorted(self.injections.items()))
        lines = [
            f"audit {self.source_topic} -> {self.shadow_topic}: {'OK' if self.ok else 'FAILED'}",
            f"source records: {self.source_records}; shadow records: {self.shadow_records}"
            f" ({self.shadow_ignored} ignored: lineage outside the audited offsets;"
            f" {self.unattributed} with no lineage at all)",
            f"ledger: {sum(self.injections.values())} injections ({kinds or 'none'}); "
            f"{self.episodes} episode entries; {self.ledger_ignored} entries ignored",
            f"missing: {len(self.missing)}; unexpected: {len(self.unexpected_duplicates)}; "
            f"ledger conflicts: {len(self.ledger_conflicts)}; "
            f"known delivery failures: {len(self.known_failures)}",
        ]
        item = f"  {{}} {self.source_topic}[{{}}]@{{}}: {{}}".format
        labelled = [("ledger conflict", d) for d in self.ledger_conflicts]
        labelled += [("missing", d) for d in self.missing]
        labelled += [("unexpected", d) for d in self.unexpected_duplicates]
        items = [item(w, p, o, f"expected {e}, found {a}") for w, (p, o, e, a) in labelled]
        items += [
            item("known delivery failure", p, o, f"{f} ({e})") for p, o, f, e in self.known_failures
        ]
        if len(items) > MAX_LISTED:
            items[MAX_LISTED:] = [f"  ... and {len(items) - MAX_LISTED} more"]
        return "\n".join(lines + items)


def reconcile(
    source_offsets: Mapping[int, Iterable[int]],
    shadow_lineage: Iterable[Origin],
    ledger_entries: Iterable[Mapping[str, Any]],
    source_topic: str,
    *,
    experiment: str | None = None,
) -> AuditReport:
    """Compare what the shadow holds per source offset with what the ledger says it should."""
    report = AuditReport(source_topic=source_topic)
    audited = {(p, o) for p, offsets in source_offsets.items() for o in offsets}
    report.source_records = len(audited)
    lineage = list(shadow_lineage)
    found = Counter(origin for origin in lineage if origin in audited)
    report.shadow_records, report.shadow_ignored = len(lineage), len(lineage) - found.total()
    delta, slack = _expectations(report, ledger_entries, audited, experiment)
    for p, o in sorted(audited):
        most, actual = 1 + delta[(p, o)], found[(p, o)]
        least = max(most - slack[(p, o)], 0)
        if most < 0:
            report.ledger_conflicts.append(Discrepancy(p, o, most, actual))
        elif actual < least:
            report.missing.append(Discrepancy(p, o, least, actual))
        elif actual > most:
            report.unexpected_duplicates.append(Discrepancy(p, o, most, actual))
    return report


def _expectations(
    report: AuditReport,
    entries: Iterable[Mapping[str, Any]],
    audited: set[Origin],
    experiment: str | None,
) -> tuple[Counter[Origin], Counter[Origin]]:
    """Per origin: emissions added (+extra, -drop), and failed emissions that may be absent."""
    delta: Counter[Origin] = Counter()
    slack: Counter[Origin] = Counter()
    for entry in entries:
        kind, src = entry.get("kind"), entry.get("source") or {}
        if kind == "lineage":  # where records went, not what happened to them
            continue
        origin = (src.get("partition"), src.get("offset"))
        mine = experiment is None or entry.get("experiment") == experiment
        if mine and kind in ("episode_start", "episode_end"):
            report.episodes += 1
            continue
        ours = kind == "injection" and src.get("topic") == report.source_topic
        if not (mine and ours and origin in audited):
            report.ledger_ignored += 1
            continue
        effect, failed = entry["effect"], entry.get("status") == "failed"
        report.injections[(str(entry.get("type")), effect)] += 1
        if failed and effect != "drop":
            fault = str(entry.get("fault", entry.get("type")))
            report.known_failures.append(KnownFailure(*origin, fault, effect))
        if effect == "drop":
            delta[origin] -= 1
        elif effect == "extra" and not failed:
            delta[origin] += 1
        elif effect == "modify" and failed:
            slack[origin] += 1
    return delta, slack


def read_ledger(path: Path) -> list[dict[str, Any]]:
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
    key = experiment.encode() if experiment is not None else None
    named = []
    for msg in read_all(bootstrap, topic, timeout, strict=True):
        if key is not None and msg.key() != key:
            continue
        where = f"{topic}[{msg.partition()}]@{msg.offset()}"
        try:
            named.append((where, (msg.value() or b"").decode("utf-8")))
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
    if entry["kind"] != "injection":
        return None
    src = entry.get("source")
    coords = [type(src.get(k)) for k in _COORDS] if isinstance(src, dict) else None
    if coords != [str, int, int]:
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


parse_lineage = parse_origin  # ``b"topic/partition/offset"`` -> (topic, partition, offset)


def audit(
    bootstrap: str,
    source: str,
    shadow: str,
    ledger: str | os.PathLike[str] | list[dict[str, Any]],
    *,
    lineage_header: str = LINEAGE_HEADER,
    start: Mapping[int, int] | None = None,
    end: Mapping[int, int] | None = None,
    experiment: str | None = None,
    timeout: float = 60,
) -> AuditReport:
    """Audit ``source`` offsets [start, end) (default: low to high watermark) against ``shadow``.

    Source offsets are read, not assumed, so compaction gaps and transaction markers are not
    taken for loss. ``timeout`` bounds the whole audit; an incomplete read is a BridgeError.
    """
    # a file is read first (a bad one fails before the broker is touched), or the entries
    # were read already (from a ledger topic)
    entries = ledger if isinstance(ledger, list) else read_ledger(Path(ledger))
    deadline = time.monotonic() + timeout
    bounds = _bounds(bootstrap, source, start or {}, end or {}, timeout)
    offsets: dict[int, list[int]] = {p: [] for p in bounds}
    for p, off, _ in _scan(bootstrap, source, bounds, deadline):
        offsets[p].append(off)
    shadow_bounds = _bounds(bootstrap, shadow, {}, {}, timeout)
    lines = Lineage.of(entries)
    origins = [
        lines.origin_of(msg, lineage_header)
        for *_, msg in _scan(bootstrap, shadow, shadow_bounds, deadline)
    ]
    lineage = [(o[1], o[2]) for o in origins if o is not None and o[0] == source]
    report = reconcile(offsets, lineage, entries, source, experiment=experiment)
    report.shadow_topic = shadow
    report.unattributed = sum(o is None for o in origins)  # e.g. landed, then a crash
    report.shadow_records += len(origins) - len(lineage)
    report.shadow_ignored += len(origins) - len(lineage) - report.unattributed
    return report


def _consumer(bootstrap: str, conf: Mapping[str, Any]) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("audit"), **conf})


def _bounds(
    bootstrap: str, topic: str, start: Mapping[int, int], end: Mapping[int, int], timeout: float
) -> dict[int, tuple[int, int]]:
    """Offsets [first, stop) per partition, clamped to what the log holds now.

    Metadata comes from a consumer: unlike an admin client, it never auto-creates a mistyped
    topic (which would then audit as empty, and pass).
    """
    with _consumer(bootstrap, {}) as consumer:
        try:
            meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if meta is None or meta.error is not None:
                raise BridgeError(f"topic {topic!r} does not exist")
            count = len(meta.partitions)
            marks = [
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in range(count)
            ]
        except KafkaException as exc:
            raise BridgeError(f"{topic}: no metadata or watermarks: {exc.args[0]}") from exc
    unknown = sorted(p for p in (*start, *end) if not 0 <= p < count)
    if unknown:
        raise ConfigError(f"{topic} has {count} partitions; there is no partition {unknown[0]}")
    return {
        p: (max(start.get(p, low), low), min(end.get(p, high), high))
        for p, (low, high) in enumerate(marks)
    }


def _scan(
    bootstrap: str, topic: str, bounds: Mapping[int, tuple[int, int]], deadline: float
) -> Iterator[tuple[int, int, Message]]:
    """(partition, offset, record) in [first, stop) per partition; raises if not all arrive.

    A partition EOF also ends a partition, whose tail may be transaction markers, not records.
    """
    pending = {p for p, (first, stop) in bounds.items() if first < stop}
    with _consumer(bootstrap, _READER) as consumer:
        consumer.assign([TopicPartition(topic, p, bounds[p][0]) for p in pending])
        while pending:
            if time.monotonic() > deadline:
                raise BridgeError(f"{topic}: partitions {sorted(pending)} not read in time")
            for msg in consumer.consume(1000, 0.2):
                p, off, err = msg.partition(), msg.offset(), msg.error()
                if p not in pending or off is None:
                    continue  # a late record of a finished partition, or a client error
                eof = err is not None and err.code() == KafkaError._PARTITION_EOF
                if err is None and off < bounds[p][1]:
                    yield p, off, msg
                if (err is None or eof) and off + (0 if eof else 1) >= bounds[p][1]:
                    pending.discard(p)
