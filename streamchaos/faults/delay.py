"""``delay``: a slow upstream or an API timeout — selected records arrive late.

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> f = Delay(Delay.Config(type="delay", delay=0.5), random.Random(1))
>>> f.act(picks_of([Record("t", 0, 7, b"k", b"v")]), now=10.0)
[HOLD]
>>> [(r.item.record.offset, r.injection.detail) for r in f.due(10.5)]
[(7, {'delay_ms': 500.0})]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from streamchaos.faults.actions import Action, Release
from streamchaos.faults.base import BufferedFault
from streamchaos.faults.hold import LongHoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.record import Injection
from streamchaos.units import Duration


class DelayConfig(LongHoldingConfig):
    type: Literal["delay"] = "delay"
    example: ClassVar[dict[str, Any]] = {"distribution": "exponential", "delay": 0.2, "cap": 1.0}
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    delay: Duration = Field(default=0.5, description="fixed delay, or the exponential mean")
    min: Duration = Field(default=0.0, description="uniform: lower bound")
    max: Duration = Field(default=1.0, description="uniform: upper bound")
    cap: Duration | None = Field(default=None, description="no delay exceeds this")

    def shortest(self) -> float:
        if self.distribution == "fixed":
            return _capped(self.delay, self)
        return _capped(self.min, self) if self.distribution == "uniform" else 0.0

    def longest(self) -> float | None:
        if self.distribution == "fixed":
            return _capped(self.delay, self)
        if self.distribution == "uniform":
            return _capped(self.max, self)
        return self.cap

    @model_validator(mode="after")
    def _bounds(self) -> DelayConfig:
        if self.distribution == "uniform" and self.min > self.max:
            raise ValueError("min must be <= max")
        return self


class Delay(BufferedFault):
    Config = DelayConfig
    purpose = "slow upstream / API timeout: fixed, uniform or exponential delay, capped"
    config: DelayConfig

    def __init__(self, config: DelayConfig, rng: random.Random) -> None:
        self._fixed = None if config.distribution != "fixed" else _capped(config.delay, config)
        super().__init__(config, rng)

    def _in_order(self) -> bool:
        return self._fixed is not None  # every record is held as long

    def draw(self) -> float:
        cfg = self.config
        if cfg.distribution == "uniform":
            return _capped(self.rng.uniform(cfg.min, cfg.max), cfg)
        return _capped(self.rng.expovariate(1.0 / cfg.delay) if cfg.delay > 0 else 0.0, cfg)

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        fixed, seeds = self._fixed, None if self._fixed is not None else picks.seeds
        for i, item in enumerate(picks.items):
            if seeds is None:
                seconds = fixed
            else:
                self.rng.seed(seeds[i])
                seconds = self.draw()
            assert seconds is not None
            inj = Injection(self._label, self._type, "modify", (seconds, False), describe)
            out.append(self._hold_for(now, seconds, Release(item, inj)))
        return out

    def early(self, release: Release) -> Release:
        inj = release.injection
        note = (inj.note[0], True)
        return Release(release.item, Injection(inj.fault, inj.type, inj.effect, note, describe))


def describe(note: tuple[float, bool]) -> dict[str, Any]:
    """The ledger detail of a delay: how long, and whether the size limit cut it short."""
    seconds, early = note
    detail: dict[str, Any] = {"delay_ms": round(seconds * 1000, 3)}
    if early:
        detail["released_early"] = True
    return detail


def _capped(seconds: float, cfg: DelayConfig) -> float:
    return seconds if cfg.cap is None else min(seconds, cfg.cap)
