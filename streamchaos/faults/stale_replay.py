"""``stale_replay``: stale data served as live.

Every record of the partition enters a bounded ring buffer. For a selected record the
record from ``lag`` before it (by event time when records carry timestamps, else by the
bridge's clock; the newest one at least that old, else the oldest kept) is
emitted instead of it (``mode: replace``) or beside it (``mode: inject``), with its old
timestamp (``timestamp: keep``) or the live record's (``timestamp: now``). ``where:``
chooses which live records are replaced; the stale one comes from the whole partition
(another key's or tenant's record, as a stale cache would serve).

>>> import random
>>> from streamchaos.faults.picks import picks_of
>>> from streamchaos.record import Record
>>> fault = StaleReplay(StaleReplayConfig(lag=1.0), random.Random(1))
>>> records = [Record("t", 0, o, None, b"v%d" % o, timestamp=1000 * o) for o in (1, 2, 3)]
>>> actions = fault.scan(picks_of(records), [False, False, True], now=0)
>>> actions[:2], actions[2].record.value, actions[2].injection.detail["stale_of"]
([KEEP, KEEP], b'v2', {'partition': 0, 'offset': 2})
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from streamchaos.faults.actions import KEEP, Action, Extra, Release, Replace
from streamchaos.faults.base import ObservingFault
from streamchaos.faults.config import FaultConfig
from streamchaos.faults.picks import Picks
from streamchaos.record import Item, Record
from streamchaos.units import Duration


class StaleReplayConfig(FaultConfig):
    type: Literal["stale_replay"] = "stale_replay"
    example: ClassVar[dict[str, Any]] = {"lag": 0.2, "mode": "inject"}
    lag: Duration = Field(default=60.0, description="how old the replayed record is")
    mode: Literal["replace", "inject"] = "replace"
    timestamp: Literal["keep", "now"] = "keep"
    buffer: int = Field(default=10_000, ge=1, description="recent records kept per partition")


class StaleReplay(ObservingFault):
    Config = StaleReplayConfig
    purpose = (
        "stale data served as live: the record from `lag` ago replaces or joins the live "
        "one, with its old or the live timestamp"
    )
    config: StaleReplayConfig

    def reset(self) -> None:
        # a ring as two lists with a moving start: bisect needs cheap random access
        self._times: list[float] = []
        self._records: list[Record] = []
        self._start = 0

    def scan(self, picks: Picks, chosen: Sequence[bool], now: float) -> Sequence[Action]:
        out: list[Action] = []
        for item, picked in zip(picks.items, chosen, strict=True):
            old = self._stale(item.record, now) if picked else None
            self._observe(item.record, now)
            out.append(KEEP if old is None else self._replay(item, old))
        return out

    def _observe(self, record: Record, now: float) -> None:
        self._times.append(self._time(record, now))
        self._records.append(record)
        if len(self._times) - self._start > self.config.buffer:
            self._start += 1
            if self._start >= self.config.buffer:  # compact now and then, not every record
                del self._times[: self._start], self._records[: self._start]
                self._start = 0

    @staticmethod
    def _time(record: Record, now: float) -> float:
        """The record's event time (seconds) when it has one, else the bridge's clock.

        Event time keeps a replayed sequence moving like the original: each selected
        record gets the record from ``lag`` before *it*, not one record for a whole batch.
        """
        return record.timestamp / 1000 if record.timestamp > 0 else now

    def _stale(self, record: Record, now: float) -> Record | None:
        """The newest kept record at least ``lag`` older (times are near-sorted)."""
        if len(self._times) == self._start:
            return None
        cutoff = self._time(record, now) - self.config.lag
        index = bisect.bisect_right(self._times, cutoff, lo=self._start) - 1
        return self._records[max(index, self._start)]

    def _replay(self, item: Item, old: Record) -> Action:
        live = item.record
        ts = old.timestamp if self.config.timestamp == "keep" else live.timestamp
        stale = live.evolve(key=old.key, value=old.value, headers=old.headers, timestamp=ts)
        detail = {
            "mode": self.config.mode,
            "stale_of": {"partition": old.partition, "offset": old.offset},
            "stale_timestamp": old.timestamp,
        }
        if self.config.mode == "replace":
            return Replace(stale, self.injection("modify", detail))
        return Extra([Release(item.copy(stale), self.injection("extra", detail))])
