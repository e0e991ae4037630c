"""``drop``: silent data loss — recorded in the ledger, so audits still balance.

>>> import random
>>> from streamchaos.record import Record
>>> [(e.record, e.injections[0].effect) for e in
...  Drop(Drop.Config(type="drop"), random.Random(1)).apply(Record("t", 0, 1, None, b"v"), 0)]
[(None, 'drop')]
"""

from __future__ import annotations

from typing import Literal

from streamchaos.faults.base import Fault, FaultConfig
from streamchaos.record import Emission, Record


class DropConfig(FaultConfig):
    type: Literal["drop"] = "drop"


class Drop(Fault):
    Config = DropConfig
    purpose = "silent data loss (ledgered, so audits still balance)"
    uses_rng = False

    def apply(self, record: Record, now: float) -> list[Emission]:
        return [Emission(None, record, [self.injection("drop")])]
