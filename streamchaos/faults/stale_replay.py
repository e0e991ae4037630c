"""``stale_replay``: stale data served as live.

Every record of the partition enters a bounded ring buffer. For a selected record the
record from ``lag`` ago (the newest one at least that old; else the oldest kept) is
emitted instead of it (``mode: replace``) or beside it (``mode: inject``), with its old
timestamp (``timestamp: keep``) or the live record's (``timestamp: now``).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field

from streamchaos.faults.base import Fault, FaultConfig
from streamchaos.record import Emission, Record
from streamchaos.units import Duration


class StaleReplayConfig(FaultConfig):
    type: Literal["stale_replay"] = "stale_replay"
    lag: Duration = Field(default=60.0, description="how old the replayed record is")
    mode: Literal["replace", "inject"] = "replace"
    timestamp: Literal["keep", "now"] = "keep"
    buffer: int = Field(default=10_000, ge=1, description="recent records kept per partition")


class StaleReplay(Fault):
    Config = StaleReplayConfig
    purpose = "stale data served as live: records from lag ago replayed"
    observes = True
    config: StaleReplayConfig

    def reset(self) -> None:
        self._ring: deque[tuple[float, Record]] = deque(maxlen=self.config.buffer)

    def observe(self, record: Record, now: float) -> None:
        self._ring.append((now, record))

    def _stale(self, now: float) -> Record | None:
        cutoff = now - self.config.lag
        chosen = None
        for seen, old in self._ring:  # oldest first; keep the newest that is old enough
            if seen > cutoff:
                break
            chosen = old
        if chosen is None and self._ring:
            chosen = self._ring[0][1]
        return chosen

    def apply(self, record: Record, now: float) -> list[Emission]:
        old = self._stale(now)
        self.observe(record, now)
        if old is None:
            return [Emission(record, record, [])]
        ts = old.timestamp if self.config.timestamp == "keep" else record.timestamp
        stale = record.evolve(key=old.key, value=old.value, headers=old.headers, timestamp=ts)
        detail = {
            "mode": self.config.mode,
            "stale_of": {"partition": old.partition, "offset": old.offset},
            "stale_timestamp": old.timestamp,
        }
        if self.config.mode == "replace":
            return [Emission(stale, record, [self.injection("modify", **detail)])]
        return [
            Emission(record, record, []),
            Emission(stale, record, [self.injection("extra", **detail)]),
        ]
