"""The audit's bookkeeping: does what the shadow holds per source offset balance the ledger?

Each shadow record is traced to the source offset whose processing emitted it (by the
ledger's lineage lines, or a lineage header); the ledger says how injections changed that
count: ``found == 1 + extra - drop`` (failed ``extra`` emissions not counted). A failed
``modify`` never landed, so the offset may be one short unless a replay after a restart
landed it: both balance, listed as *known delivery failures*, never as unexplained loss.

Pure: plain data in, ``AuditReport`` out. ``audit`` does the Kafka reads around it.

>>> report = reconcile({0: [0, 1]}, [(0, 0)], [], "src")
>>> report.ok, report.missing
(False, [Discrepancy(partition=0, offset=1, expected=1, actual=0)])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

MAX_LISTED = 20
Origin = tuple[int, int]  # (partition, offset) of a source record


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
    plan_changes: int = 0  # faults added, replaced or removed while the bridge ran
    ledger_ignored: int = 0  # other topics or experiments, offsets outside the range
    missing: list[Discrepancy] = field(default_factory=list)
    unexpected_duplicates: list[Discrepancy] = field(default_factory=list)  # incl. drops found
    crash_copies: int = 0  # of those, records identical to another output of their record
    ledger_conflicts: list[Discrepancy] = field(default_factory=list)  # more drops than emits
    known_failures: list[KnownFailure] = field(default_factory=list)
    held: list[Discrepancy] = field(default_factory=list)  # waiting in the long-hold topic
    overdue: int = 0  # of those, past their time: released when a bridge runs again
    hold_topic: str | None = None

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
            f"{self.episodes} episode entries; {self.plan_changes} plan changes; "
            f"{self.ledger_ignored} entries ignored",
            f"missing: {len(self.missing)}; unexpected: {len(self.unexpected_duplicates)}; "
            f"ledger conflicts: {len(self.ledger_conflicts)}; "
            f"known delivery failures: {len(self.known_failures)}",
        ]
        if self.held:
            lines.append(
                f"held: {len(self.held)} source records wait in {self.hold_topic} (not "
                f"missing; {self.overdue} past their time, released when a bridge of the "
                "experiment runs)"
            )
        if self.crash_copies:
            lines.append(
                f"crash copies: {self.crash_copies} shadow records repeat another output of "
                "their source record, as at-least-once delivery does after a crash or a lost "
                "partition (delivery: exactly-once leaves none)"
            )
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
        if mine and kind == "plan_change" and entry.get("route") == report.source_topic:
            report.plan_changes += 1
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
