"""When a fault is active and how strongly: intensity 0..1 as a function of the clock.

Time is the experiment's clock in seconds from its start (the bridge's own, or the
records' timestamps under ``clock: event``). Shapes:
``step`` (abrupt: 1 inside the window), ``linear`` (0→1 over ``ramp``), ``sigmoid``
(logistic whose 12 %→88 % span is exactly ``ramp``, the MOA/river width convention).
``every``/``on`` repeat the window: active for ``on`` seconds of every ``every``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from streamchaos.units import Duration


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Duration = 0.0
    duration: Duration | None = None
    shape: Literal["step", "linear", "sigmoid"] = "step"
    ramp: Duration = 0.0
    every: Duration | None = None
    on: Duration | None = None

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        if (self.every is None) != (self.on is None):
            raise ValueError("every and on go together (active `on` seconds of every `every`)")
        if self.every is not None and self.on is not None and not 0 < self.on <= self.every:
            raise ValueError("on must be > 0 and <= every")
        if self.shape == "step" and self.ramp > 0:
            raise ValueError("ramp needs shape linear or sigmoid (step is abrupt)")
        if self.shape == "sigmoid" and self.ramp <= 0:
            raise ValueError("a sigmoid shape needs a ramp > 0 (its 12%→88% width)")
        return self

    def intensity(self, now: float) -> float:
        """0..1 at ``now`` seconds from the experiment's start.

        >>> Schedule(start=10, shape="linear", ramp=10).intensity(15)
        0.5
        """
        t = now - self.start
        if t < 0 or (self.duration is not None and t >= self.duration):
            return 0.0
        if self.every is not None and self.on is not None:
            t = t % self.every
            if t >= self.on:
                return 0.0
        if self.shape == "step" or self.ramp <= 0:
            return 1.0
        if self.shape == "linear":
            return min(1.0, t / self.ramp)
        # logistic centred mid-ramp; slope makes [0, ramp] the 12%..88% span
        k = 2 * math.log(0.88 / 0.12) / self.ramp
        return 1.0 / (1.0 + math.exp(-k * (t - self.ramp / 2)))

    # -- active windows (the event clock's episodes) -----------------------------------

    def window(self, k: int) -> tuple[float, float] | None:
        """Bounds [start, end) of the ``k``-th active window (from 0), None past the last.

        >>> Schedule(start=5, every=10, on=2, duration=25).window(2)
        (25.0, 27.0)
        """
        stop = self.start + self.duration if self.duration is not None else math.inf
        if self.every is None or self.on is None:
            return (self.start, stop) if k == 0 else None
        begin = self.start + k * self.every
        return (begin, min(begin + self.on, stop)) if begin < stop else None

    def last_started(self, t: float) -> int:
        """Index of the last window that starts at or before ``t`` (-1: none yet)."""
        if t < self.start:
            return -1
        if self.every is None:
            return 0
        k = int((t - self.start) // self.every)
        while k > 0 and self.window(k) is None:  # past the duration: its last window
            k = min(k - 1, int((self.duration or 0) // self.every))
        return k

    def window_index(self, t: float) -> int | None:
        """The window ``t`` falls in, None between windows."""
        k = self.last_started(t)
        bounds = self.window(k) if k >= 0 else None
        return k if bounds is not None and t < bounds[1] else None
