"""``reorder``: out-of-order events within a bounded window per partition.

Selected records are held until ``window`` of them are collected or the oldest has waited
``max_wait``; then they are released together in a shuffled order, behind the records
that passed meanwhile.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamchaos.faults.base import Fault, FaultConfig
from streamchaos.record import Emission, Record
from streamchaos.units import Duration


class ReorderConfig(FaultConfig):
    type: Literal["reorder"] = "reorder"
    window: int = Field(default=10, ge=2, description="records shuffled together")
    max_wait: Duration = Field(default=1.0, description="release a partial window after this")


class Reorder(Fault):
    Config = ReorderConfig
    purpose = "out-of-order events within a bounded window per partition"
    holds = True
    config: ReorderConfig

    def reset(self) -> None:
        self._buffer: list[Emission] = []
        self._since = 0.0

    def apply(self, record: Record, now: float) -> list[Emission]:
        if not self._buffer:
            self._since = now
        self._buffer.append(Emission(record, record, []))
        if len(self._buffer) >= self.config.window:
            return self._release(now)
        return []

    def due(self, now: float) -> list[Emission]:
        if self._buffer and now - self._since >= self.config.max_wait:
            return self._release(now)
        return []

    def _release(self, now: float) -> list[Emission]:
        out = self._buffer
        self._buffer = []
        order = list(range(len(out)))
        self.rng.shuffle(order)
        shuffled = [out[i] for i in order]
        for position, em in enumerate(shuffled):
            em.injections.append(
                self.injection(
                    "modify",
                    window=len(out),
                    position=position,
                    held_ms=round((now - self._since) * 1000, 3),
                )
            )
        return shuffled

    def drain(self) -> list[Emission]:
        return self._release(self._since) if self._buffer else []

    def held(self) -> int:
        return len(self._buffer)

    def oldest_held(self) -> int | None:
        return min((e.source.offset for e in self._buffer), default=None)
