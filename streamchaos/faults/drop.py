"""``drop``: silent data loss — recorded in the ledger, so audits still balance.

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = Drop(Drop.Config(type="drop"), random.Random(1))
>>> [action.injection.effect for action in fault.act(picks_of([Record("t", 0, 1, None, b"v")]), 0)]
['drop']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from streamchaos.faults.actions import Action
from streamchaos.faults.actions import Drop as DropAction
from streamchaos.faults.base import Fault
from streamchaos.faults.config import FaultConfig
from streamchaos.faults.picks import Picks


class DropConfig(FaultConfig):
    type: Literal["drop"] = "drop"
    example: ClassVar[dict[str, Any]] = {}


class Drop(Fault):
    Config = DropConfig
    purpose = "silent data loss, recorded in the ledger so audits balance"

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        return [DropAction(self.injection("drop")) for _ in picks.items]
