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
from typing import Literal

from pydantic import Field, model_validator

from streamchaos.faults.base import BufferedFault, HoldingConfig
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
    purpose = "slow upstream / API timeout: selected records arrive late"
    config: DelayConfig

    def __init__(self, config: DelayConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.uses_rng = config.distribution != "fixed"

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
        inj = self.injection("modify", delay_ms=round(seconds * 1000, 3))
        return self._held.push(now + seconds, Emission(record, record, [inj]))
