"""``delay``: a slow upstream or an API timeout — selected records arrive late.

>>> import random
>>> from streamchaos.record import Record
>>> f = Delay(Delay.Config(type="delay", delay=0.5), random.Random(1))
>>> f.apply(Record("t", 0, 7, b"k", b"v"), now=10.0)
[]
>>> [e.record.offset for e in f.due(10.5)]
[7]
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field, model_validator

from streamchaos.faults.base import BufferedFault, Held, HoldingConfig
from streamchaos.record import Emission, Record
from streamchaos.units import Duration


class DelayConfig(HoldingConfig):
    type: Literal["delay"] = "delay"
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    delay: Duration = Field(default=0.5, description="fixed delay, or the exponential mean")
    min: Duration = Field(default=0.0, description="uniform: lower bound")
    max: Duration = Field(default=1.0, description="uniform: upper bound")
    cap: Duration | None = Field(default=None, description="no delay exceeds this")

    @model_validator(mode="after")
    def _bounds(self) -> DelayConfig:
        if self.distribution == "uniform" and self.min > self.max:
            raise ValueError("min must be <= max")
        return self


class Delay(BufferedFault):
    Config = DelayConfig
    holds_items = True
    purpose = "slow upstream / API timeout: selected records arrive late"
    config: DelayConfig

    def __init__(self, config: DelayConfig, rng: random.Random) -> None:
        self.uses_rng = config.distribution != "fixed"
        self.releases_in_order = not self.uses_rng  # every record is held as long
        super().__init__(config, rng)
        self._fixed = self.draw() if self.releases_in_order else None  # that one delay

    def draw(self) -> float:
        cfg = self.config
        if cfg.distribution == "fixed":
            seconds = cfg.delay
        elif cfg.distribution == "uniform":
            seconds = self.rng.uniform(cfg.min, cfg.max)
        else:
            seconds = self.rng.expovariate(1.0 / cfg.delay) if cfg.delay > 0 else 0.0
        return seconds if cfg.cap is None else min(seconds, cfg.cap)

    def apply(self, record: Record, now: float) -> list[Emission]:
        seconds = self.draw()
        inj = self.injection("modify", delay_ms=_ms(seconds))
        return self._hold(now + seconds, Emission(record, record, [inj]))

    def hold_many(
        self, offsets: list[int], items: list[Any], seeds: list[int] | None, now: float
    ) -> list[tuple[int, list[Held]]]:
        """``apply`` for selected records the caller keeps in its own form (the bridge: a
        lone ``delay``'s records as their produce calls' arguments), at source ``offsets``;
        ``seeds[i]`` seeds the draw for ``items[i]`` (None: ``uses_rng`` is False). Each
        comes back once, from ``due`` or ``drain``, as a ``Held``. Returns (i, what holding
        ``items[i]`` released early) where the size limit did, as ``apply`` returns it."""
        out = []
        push, fixed, new = self._held.push, self._fixed, tuple.__new__
        for i, offset in enumerate(offsets):
            if fixed is None:
                self.rng.seed(seeds[i])  # type: ignore[index]
                seconds = self.draw()
            else:
                seconds = fixed
            # ``Held(...)`` without its Python-level ``__new__``: this is the hot path
            early = push(now + seconds, offset, new(Held, (offset, items[i], seconds, False)))
            if early:
                out.append((i, [held._replace(early=True) for held in early]))
        return out

    def describe(self, held: Held) -> dict[str, Any]:
        """The ledger detail of a ``Held`` record, as ``apply`` writes it."""
        detail: dict[str, Any] = {"delay_ms": _ms(held.seconds)}
        if held.early:
            detail["released_early"] = True
        return detail


def _ms(seconds: float) -> float:
    """A delay as the ledger gives it, whichever path held the record."""
    return round(seconds * 1000, 3)
