"""``duplicate``: at-least-once redelivery and retry storms — extra copies of a record.

The original passes at once; ``copies`` more follow, immediately or ``spacing`` apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from streamchaos.faults.actions import Action, Extra, Release
from streamchaos.faults.base import BufferedFault
from streamchaos.faults.hold import HoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.units import Duration


class DuplicateConfig(HoldingConfig):
    type: Literal["duplicate"] = "duplicate"
    copies: int = Field(default=1, ge=1, le=100, description="extra copies per record")
    spacing: Duration = Field(default=0.0, description="time between copies (0: at once)")


class Duplicate(BufferedFault):
    Config = DuplicateConfig
    purpose = "at-least-once redelivery, retry storms: extra copies of a record"
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
