"""``duplicate``: at-least-once redelivery and retry storms — extra copies of a record.

The original passes at once; ``copies`` more follow, immediately or ``spacing`` apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamchaos.faults.base import BufferedFault, HoldingConfig
from streamchaos.record import Emission, Record
from streamchaos.units import Duration


class DuplicateConfig(HoldingConfig):
    type: Literal["duplicate"] = "duplicate"
    copies: int = Field(default=1, ge=1, le=100, description="extra copies per record")
    spacing: Duration = Field(default=0.0, description="time between copies (0: at once)")


class Duplicate(BufferedFault):
    Config = DuplicateConfig
    purpose = "at-least-once redelivery, retry storms: extra copies of a record"
    uses_rng = False
    config: DuplicateConfig

    def apply(self, record: Record, now: float) -> list[Emission]:
        out = [Emission(record, record, [])]
        for copy in range(1, self.config.copies + 1):
            em = Emission(record, record, [self.injection("extra", copy=copy)])
            if self.config.spacing > 0:
                out.extend(self._hold(now + copy * self.config.spacing, em))
            else:
                out.append(em)
        return out
