"""The bridge's status line (every ``bridge.status_interval``) and its final summary.

Both read the bridge's own Prometheus registry, so they say what ``/metrics`` says: the
injection counts are the ledger's (one per injection line), the rates are records per
second since the last line.

>>> from prometheus_client import CollectorRegistry, Counter
>>> registry = CollectorRegistry()
>>> consumed = Counter("streamchaos_records_consumed", "", ["route"], registry=registry)
>>> status = Status(registry, interval=10.0, now=0.0)
>>> consumed.labels(route="src").inc(500)
>>> status.line(10.0, paused=False)
'status: in 50/s, out 0/s, injections +0, held 0, commit lag 0, faults on'
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """The counters that matter to a person watching a run, summed as they need them."""

    consumed: Tally[str] = field(default_factory=Tally)  # by route
    produced: Tally[str] = field(default_factory=Tally)
    failed: Tally[str] = field(default_factory=Tally)
    injections: Tally[tuple[str, str]] = field(default_factory=Tally)  # by (route, fault)
    held: int = 0
    lag: int = 0

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Snapshot:
        snap = cls()
        for metric in registry.collect():
            for sample in metric.samples:
                name, labels, value = sample.name, sample.labels, int(sample.value)
                route = labels.get("route", "")
                if name == "streamchaos_records_consumed_total":
                    snap.consumed[route] += value
                elif name == "streamchaos_records_produced_total":
                    snap.produced[route] += value
                elif name == "streamchaos_produce_errors_total":
                    snap.failed[route] += value
                elif name == "streamchaos_injections_total":
                    snap.injections[(route, labels["fault"])] += value
                elif name == "streamchaos_held_records":
                    snap.held += value
                elif name == "streamchaos_commit_lag_records":
                    snap.lag += value
        return snap


class Status:
    """A status line when one is due; ``interval`` 0 turns the lines off."""

    def __init__(self, registry: CollectorRegistry, interval: float, now: float) -> None:
        self.registry, self.interval = registry, interval
        self._last, self._at = Snapshot.of(registry), now

    def due(self, now: float) -> bool:
        return self.interval > 0 and now - self._at >= self.interval

    def line(self, now: float, paused: bool) -> str:
        """Rates and new injections since the last line, and what is held and uncommitted."""
        snap, last = Snapshot.of(self.registry), self._last
        seconds = max(now - self._at, 1e-9)
        rate_in = (snap.consumed.total() - last.consumed.total()) / seconds
        rate_out = (snap.produced.total() - last.produced.total()) / seconds
        new = snap.injections - last.injections  # only the faults that injected
        several = len(snap.consumed) > 1  # fault names are unique per route only
        per_fault = ", ".join(
            f"{f'{route}/' if several else ''}{fault}={n:,}"
            for (route, fault), n in sorted(new.items())
        )
        self._last, self._at = snap, now
        return (
            f"status: in {rate_in:,.0f}/s, out {rate_out:,.0f}/s, "
            f"injections +{new.total():,}{f' ({per_fault})' if per_fault else ''}, "
            f"held {snap.held:,}, commit lag {snap.lag:,}, "
            f"faults {'paused' if paused else 'on'}"
        )

    def closing(self, code: int, failed_outputs: int, failed_lines: int) -> int:
        """At shutdown: what could not be delivered (exit code 1 then), and the totals."""
        if failed_outputs:
            log.error(
                "%d outputs (shadow records or ledger lines) could not be delivered; their "
                "source offsets were not committed and will be read again on restart",
                failed_outputs,
            )
            code = 1
        if failed_lines:
            log.error(
                "%d ledger lines about episodes, plan changes or guardrails did not reach the "
                "ledger topic",
                failed_lines,
            )
            code = 1
        for line in self.summary():  # totals per route and per fault
            log.info("%s", line)
        return code

    def summary(self) -> list[str]:
        """One line per route (records in, out, failed) and per fault (injections)."""
        snap = Snapshot.of(self.registry)
        lines = [
            f"route {route}: consumed={snap.consumed[route]} "
            f"produced={snap.produced[route]} failed={snap.failed[route]}"
            for route in sorted(snap.consumed)
        ]
        lines += [
            f"fault {fault} on {route}: injections={n}"
            for (route, fault), n in sorted(snap.injections.items())
        ]
        return lines
