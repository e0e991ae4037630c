"""``reorder``: out-of-order events within a bounded window per partition.

Selected records are held until ``window`` of them are collected or the oldest has waited
``max_wait``; then they are released together in a shuffled order, behind the records
that passed meanwhile.

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Reorder(ReorderConfig(window=3), random.Random(1))
>>> *held, full = fault.act(picks_of([Record("t", 0, o, None, b"v") for o in (1, 2, 3)]), 0)
>>> held, [release.item.offset for release in full.released]
([HOLD, HOLD], [1, 3, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from streamchaos.faults.actions import HOLD, Action, Hold, Release
from streamchaos.faults.base import HoldingFault
from streamchaos.faults.config import FaultConfig
from streamchaos.faults.picks import Picks
from streamchaos.record import Item
from streamchaos.units import Duration


class ReorderConfig(FaultConfig):
    type: Literal["reorder"] = "reorder"
    example: ClassVar[dict[str, Any]] = {"window": 4, "max_wait": 0.5}
    window: int = Field(default=10, ge=2, description="records shuffled together")
    max_wait: Duration = Field(default=1.0, description="release a partial window after this")


class Reorder(HoldingFault):
    Config = ReorderConfig
    purpose = "out-of-order events: a window of selected records released shuffled"
    config: ReorderConfig

    def reset(self) -> None:
        self._buffer: list[Item] = []
        self._since = 0.0

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        for i, item in enumerate(picks.items):
            self.rng.seed(picks.seeds[i])  # a full window's shuffle: the last record's draws
            if not self._buffer:
                self._since = now
            self._buffer.append(item)
            full = len(self._buffer) >= self.config.window
            out.append(Hold(self._release(now)) if full else HOLD)
        return out

    def due(self, now: float) -> list[Release]:
        if self._buffer and now - self._since >= self.config.max_wait:
            return self._release(now)
        return []

    def _release(self, now: float) -> list[Release]:
        held, self._buffer = self._buffer, []
        order = list(range(len(held)))
        self.rng.shuffle(order)
        held_ms = round((now - self._since) * 1000, 3)
        return [
            Release(
                held[j],
                self.injection(
                    "modify", {"window": len(held), "position": position, "held_ms": held_ms}
                ),
            )
            for position, j in enumerate(order)
        ]

    def drain(self, now: float) -> list[Release]:
        return self._release(now) if self._buffer else []

    def held(self) -> int:
        return len(self._buffer)

    def oldest_held(self) -> int | None:
        return min((item.offset for item in self._buffer), default=None)

    def held_offsets(self) -> list[int]:
        return [item.offset for item in self._buffer]
