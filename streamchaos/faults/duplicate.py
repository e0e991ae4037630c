"""``duplicate``: at-least-once redelivery and retry storms — extra copies of a record.

The original passes at once; ``copies`` more follow, immediately or ``spacing`` apart.

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Duplicate(DuplicateConfig(copies=2), random.Random(1))
>>> [extra] = fault.act(picks_of([Record("t", 0, 7, None, b"v")]), 0)
>>> [(r.item.offset, r.injection.effect, r.injection.detail) for r in extra.copies]
[(7, 'extra', {'copy': 1}), (7, 'extra', {'copy': 2})]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from streamchaos.faults.actions import Action, Extra, Release
from streamchaos.faults.base import BufferedFault
from streamchaos.faults.hold import HoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.units import Duration


class DuplicateConfig(HoldingConfig):
    type: Literal["duplicate"] = "duplicate"
    example: ClassVar[dict[str, Any]] = {"copies": 2, "spacing": 0.1}
    copies: int = Field(default=1, ge=1, le=100, description="extra copies per record")
    spacing: Duration = Field(default=0.0, description="time between copies (0: at once)")


class Duplicate(BufferedFault):
    Config = DuplicateConfig
    purpose = "at-least-once redelivery, retry storms: n copies, optionally spaced"
    config: DuplicateConfig

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        spacing = self.config.spacing
        for item in picks.items:
            now_out: list[Release] = []
            for copy in range(1, self.config.copies + 1):
                extra = Release(item.copy(), self.injection("extra", {"copy": copy}))
                if spacing > 0:
                    now_out.extend(self._hold(now + copy * spacing, extra))
                else:
                    now_out.append(extra)
            out.append(Extra(now_out))
        return out
