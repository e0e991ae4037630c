"""``outage``: an upstream stops for a window, then the backlog arrives as a burst.

While the schedule is active, selected records of the affected partitions are held; when
it ends (or the bridge stops), the backlog is released at once, in order.
Use ``fraction: 1`` for a full stop; ``partitions`` limits it to some partitions.

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Outage(OutageConfig(schedule={"start": 0, "duration": 5}), random.Random(1))
>>> fault.act(picks_of([Record("t", 0, o, None, b"v") for o in (1, 2)]), now=1.0)
[HOLD, HOLD]
>>> fault.due(2.0), [(r.item.offset, r.injection.detail) for r in fault.due(5.0)]
([], [(1, {'held_ms': 4000.0, 'burst': 2}), (2, {'held_ms': 4000.0, 'burst': 2})])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from streamchaos.faults.actions import HOLD, KEEP, Action, Hold, Release
from streamchaos.faults.base import HoldingFault
from streamchaos.faults.hold import HoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.record import Item


class OutageConfig(HoldingConfig):
    type: Literal["outage"] = "outage"
    example: ClassVar[dict[str, Any]] = {"schedule": {"start": 0.0, "duration": 1.0}}
    fraction: float = Field(default=1.0, ge=0, le=1, description="share of records held")
    partitions: list[int] | None = Field(
        default=None, description="affected source partitions (default: the whole route)"
    )


class Outage(HoldingFault):
    Config = OutageConfig
    purpose = (
        "an upstream stops for the schedule's window (a route or some partitions), then "
        "the backlog bursts out"
    )
    config: OutageConfig

    def reset(self) -> None:
        self._backlog: list[Item] = []
        self._started = 0.0

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        parts = self.config.partitions
        out: list[Action] = []
        for item in picks.items:
            if parts is not None and item.partition not in parts:
                out.append(KEEP)
                continue
            if not self._backlog:
                self._started = now
            self._backlog.append(item)
            full = len(self._backlog) > self.config.max_held
            out.append(Hold(self._release(now, early=True)) if full else HOLD)
        return out

    def due(self, now: float) -> list[Release]:
        if self._backlog and self.timeline(now) == 0.0:
            return self._release(now)
        return []

    def _release(self, now: float, early: bool = False) -> list[Release]:
        count = 1 if early else len(self._backlog)
        out, self._backlog = self._backlog[:count], self._backlog[count:]
        detail = {"held_ms": round((now - self._started) * 1000, 3), "burst": len(out)}
        if early:
            detail["released_early"] = True
        return [Release(item, self.injection("modify", dict(detail))) for item in out]

    def drain(self, now: float) -> list[Release]:
        return self._release(now) if self._backlog else []

    def held(self) -> int:
        return len(self._backlog)

    def oldest_held(self) -> int | None:
        """Not the backlog's first: records an earlier stage held (a ``delay``) come in
        after newer ones."""
        return min((item.offset for item in self._backlog), default=None)

    def held_offsets(self) -> list[int]:
        return [item.offset for item in self._backlog]
