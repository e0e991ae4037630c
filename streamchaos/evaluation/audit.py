"""``audit``: read a source topic and its shadow from Kafka, and reconcile them with the
ledger (``reconcile``): every source offset accounted for.

Source offsets are read, not assumed, so compaction gaps and transaction markers are not
taken for loss; shadow records are traced by the ledger's lineage lines or the lineage
header.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamchaos.errors import BridgeError, ConfigError
from streamchaos.evaluation.reconcile import AuditReport, reconcile
from streamchaos.hold_record import Note, hold_topic
from streamchaos.kafkatools import unique_name
from streamchaos.ledger import read_ledger
from streamchaos.lineage import LINEAGE_HEADER, Lineage

_READER = {
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
}


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
    shadow_bootstrap: str | None = None,
    hold_topic: str | None = None,
) -> AuditReport:
    """Audit ``source`` offsets [start, end) (default: low to high watermark) against ``shadow``.

    Source offsets are read, not assumed, so compaction gaps and transaction markers are not
    taken for loss. ``timeout`` bounds the whole audit; an incomplete read is a BridgeError.
    ``shadow_bootstrap``: the shadow's cluster, when it is not the source's.
    ``hold_topic``: where the bridge's long holds wait (default: beside the shadow,
    ``features.hold.shadow``); a record missing from the shadow that waits there is held.
    """
    # a file is read first (a bad one fails before the broker is touched), or the entries
    # were read already (from a ledger topic)
    entries = ledger if isinstance(ledger, list) else read_ledger(Path(ledger))
    deadline = time.monotonic() + timeout
    bounds = _bounds(bootstrap, source, start or {}, end or {}, timeout)
    offsets: dict[int, list[int]] = {p: [] for p in bounds}
    for p, off, _ in _scan(bootstrap, source, bounds, deadline):
        offsets[p].append(off)
    shadow_bootstrap = shadow_bootstrap or bootstrap
    shadow_bounds = _bounds(shadow_bootstrap, shadow, {}, {}, timeout)
    lines = Lineage.of(entries)
    origins, contents = [], Counter[tuple[int, int, int]]()
    for *_, msg in _scan(shadow_bootstrap, shadow, shadow_bounds, deadline):
        origin = lines.origin_of(msg, lineage_header)
        origins.append(origin)
        if origin is not None:
            contents[(origin[1], origin[2], _content(msg, lineage_header))] += 1
    lineage = [(o[1], o[2]) for o in origins if o is not None and o[0] == source]
    report = reconcile(offsets, lineage, entries, source, experiment=experiment)
    repeats = Counter[tuple[int, int]]()
    for (p, o, _), n in contents.items():
        repeats[(p, o)] += n - 1
    report.crash_copies = sum(
        min(d.actual - d.expected, repeats[(d.partition, d.offset)])
        for d in report.unexpected_duplicates
    )
    report.shadow_topic = shadow
    _held(report, bootstrap, source, hold_topic or _hold_topic_of(shadow), deadline)
    report.unattributed = sum(o is None for o in origins)  # e.g. landed, then a crash
    report.shadow_records += len(origins) - len(lineage)
    report.shadow_ignored += len(origins) - len(lineage) - report.unattributed
    return report


def _hold_topic_of(shadow: str, suffix: str = ".shadow") -> str | None:
    return hold_topic(shadow, suffix) if shadow.endswith(suffix) and shadow != suffix else None


def _held(
    report: AuditReport, bootstrap: str, source: str, topic: str | None, deadline: float
) -> None:
    """Missing records that wait in the long-hold topic ``topic`` (if it exists) are held:
    their ledger line comes when they are released."""
    if topic is None or not report.missing:
        return
    try:
        bounds = _bounds(bootstrap, topic, {}, {}, max(1.0, deadline - time.monotonic()))
    except BridgeError:  # no long holds: no such topic
        return
    waiting: dict[tuple[int, int], int] = {}
    for *_, msg in _scan(bootstrap, topic, bounds, deadline):
        note = Note.read(msg)
        if note is not None and note.source[0] == source:
            waiting[(note.source[1], note.source[2])] = note.due_ms
    now_ms = time.time() * 1000
    report.held = [d for d in report.missing if (d.partition, d.offset) in waiting]
    report.missing = [d for d in report.missing if (d.partition, d.offset) not in waiting]
    report.overdue = sum(waiting[(d.partition, d.offset)] < now_ms for d in report.held)
    report.hold_topic = topic


def _content(msg: Message, lineage_header: str) -> int:
    """A hash of what a shadow record holds (key, value, headers but the lineage one): a
    record produced twice holds the same."""
    headers = tuple(h for h in msg.headers() or () if h[0] != lineage_header)
    return hash((msg.key(), msg.value(), headers))


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
