"""``flip_key``: one byte of the key flipped, so a keyed join or a per-entity feature
silently misses its entity. A sample fault: dropped into a package on the fault search
path (``STREAMCHAOS_FAULT_PACKAGES``), it works with no other edit (tests/unit/
test_fault_discovery.py proves it).

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = FlipKey(FlipKeyConfig(), random.Random(1))
>>> [a.record.key for a in fault.act(picks_of([Record("t", 0, 1, b"user-7", b"v")]), 0)]
[b'\\x8aser-7']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from streamchaos.faults import Fault, FaultConfig
from streamchaos.faults.actions import KEEP, Action
from streamchaos.faults.picks import Picks


class FlipKeyConfig(FaultConfig):
    type: Literal["flip_key"] = "flip_key"
    example: ClassVar[dict[str, Any]] = {"position": 0}
    position: int = Field(default=0, ge=0, description="which byte of the key to flip")


class FlipKey(Fault):
    Config = FlipKeyConfig
    purpose = "keys that no longer match their entity: one byte of the key flipped"
    config: FlipKeyConfig

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        at = self.config.position
        out: list[Action] = []
        for item in picks.items:
            key = item.key
            if key is None or len(key) <= at:
                out.append(KEEP)  # nothing to flip: the record passes as it came
                continue
            flipped = key[:at] + bytes([key[at] ^ 0xFF]) + key[at + 1 :]
            out.append(self.modify(item.record.evolve(key=flipped), {"position": at}))
        return out
