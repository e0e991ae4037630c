"""``outage``: an upstream stops for a window, then the backlog arrives as a burst.

While the schedule is active, selected records of the affected partitions are held; when
it ends (or the bridge stops), the backlog is released at once, in order.
Use ``fraction: 1`` for a full stop; ``partitions`` limits it to some partitions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamchaos.faults.base import Fault, HoldingConfig
from streamchaos.record import Emission, Record


class OutageConfig(HoldingConfig):
    type: Literal["outage"] = "outage"
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records held")
    partitions: list[int] | None = Field(
        default=None, description="affected source partitions (default: the whole route)"
    )


class Outage(Fault):
    Config = OutageConfig
    purpose = "upstream stops for a window, then the backlog is released as a burst"
    uses_rng = False
    holds = True
    config: OutageConfig

    def reset(self) -> None:
        self._backlog: list[Emission] = []
        self._started = 0.0

    def apply(self, record: Record, now: float) -> list[Emission]:
        parts = self.config.partitions
        if parts is not None and record.partition not in parts:
            return [Emission(record, record, [])]
        if not self._backlog:
            self._started = now
        self._backlog.append(Emission(record, record, []))
        if len(self._backlog) > self.config.max_held:
            return self._release(now, early=True)
        return []

    def due(self, now: float) -> list[Emission]:
        if self._backlog and self.config.schedule.intensity(now) == 0.0:
            return self._release(now)
        return []

    def _release(self, now: float, early: bool = False) -> list[Emission]:
        count = 1 if early else len(self._backlog)
        out, self._backlog = self._backlog[:count], self._backlog[count:]
        for em in out:
            detail = {"held_ms": round((now - self._started) * 1000, 3), "burst": len(out)}
            if early:
                detail["released_early"] = True
            em.injections.append(self.injection("modify", **detail))
        return out

    def drain(self) -> list[Emission]:
        return self._release(self._started) if self._backlog else []

    def held(self) -> int:
        return len(self._backlog)

    def oldest_held(self) -> int | None:
        return self._backlog[0].source.offset if self._backlog else None
