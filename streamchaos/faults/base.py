"""The fault protocol: one required method, capabilities as types.

Required: ``act(picks, now)`` → one typed action per picked record (``faults.actions``).
Capabilities, which the engine checks once per stage by type:
- ``HoldingFault`` keeps items (``Hold``) and gives them back from ``due(now)`` and
  ``drain(now)``; the partition's commit point stays behind ``oldest_held()``;
- ``ObservingFault`` sees every record of the batch, picked or not (``scan``).
The bridge owns the clock and passes ``now`` (seconds since the experiment's start), so
tests drive faults with a fake clock. One instance per (fault, source partition).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from streamchaos.codec.registry import ParsedSchema
from streamchaos.errors import FieldError
from streamchaos.faults import actions
from streamchaos.faults.actions import KEEP, Action, Release, Replace, ReplaceValue
from streamchaos.faults.config import FaultConfig
from streamchaos.faults.context import FaultContext
from streamchaos.faults.hold import HoldBuffer, HoldingConfig
from streamchaos.faults.picks import Picks
from streamchaos.record import Describe, Injection, Record, _as_is

__all__ = [
    "BufferedFault",
    "DecodingFault",
    "Fault",
    "FaultConfig",
    "FaultContext",
    "HoldingConfig",
    "HoldingFault",
    "ObservingFault",
    "RunningStats",
    "ValueFault",
]


class Fault(ABC):
    """Base class; subclasses set ``Config`` and ``purpose`` and implement ``act``."""

    Config: ClassVar[type[FaultConfig]]
    purpose: ClassVar[str] = ""

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self._label = config.label  # a property of the model: looked up once
        self._type = config.type
        self.timeline: Callable[[float], float] = config.schedule.intensity
        """intensity at a time: the schedule's, unless the stage selecting for this fault
        says (a fault added live counts from then; a stopped or paused one is at 0)."""
        self.reset()

    def reset(self) -> None:
        """Rebuild mutable state (a partition's state starts empty on assignment)."""
        return None  # optional hook: stateless faults have nothing to rebuild

    @abstractmethod
    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        """One action per picked record, in order."""

    def episode_started(self) -> None:
        """An episode of this fault starts (the schedule's intensity leaves 0): what
        belongs to one episode starts over. Held records and warm-up statistics stay."""
        return None  # optional hook: most faults keep nothing per episode

    def injection(self, effect: str, note: Any = None, describe: Describe = _as_is) -> Injection:
        """What this fault did; ``note`` becomes the ledger detail through ``describe``
        (by default the note is the detail)."""
        return Injection(self._label, self._type, effect, {} if note is None else note, describe)

    def modify(self, record: Record, note: Any, describe: Describe = _as_is) -> Replace:
        return Replace(record, self.injection("modify", note, describe))


class HoldingFault(Fault):
    """A fault that keeps items (``Hold``) and gives them back later."""

    @abstractmethod
    def due(self, now: float) -> list[Release]:
        """What to release at ``now``."""

    @abstractmethod
    def drain(self, now: float) -> list[Release]:
        """Everything held, released at ``now`` (shutdown, revocation, pause), in
        release order."""

    @abstractmethod
    def held(self) -> int: ...

    @abstractmethod
    def oldest_held(self) -> int | None:
        """Lowest source offset held: the partition's commit point stays behind it."""

    @abstractmethod
    def held_offsets(self) -> list[int]:
        """The source offset of each item held (exactly-once commits say which records
        beyond the commit point are not done)."""


class BufferedFault(HoldingFault):
    """A holding fault whose items wait in a ``HoldBuffer`` (release by time, size limit)."""

    config: HoldingConfig

    def reset(self) -> None:
        self._held: HoldBuffer[Release] = HoldBuffer(self.config.max_held, self._in_order())

    def _in_order(self) -> bool:
        """Whether items come due in the order they are held (every one held as long)."""
        return False

    def _hold_for(self, now: float, seconds: float, release: Release) -> Action:
        """Hold ``release`` for ``seconds``: in memory, or, beyond the bridge's in-memory
        horizon (``FaultContext.horizon``), in its long-hold store."""
        ctx: FaultContext | None = getattr(self, "ctx", None)
        if ctx is not None and ctx.horizon is not None and seconds > ctx.horizon:
            return actions.Defer(now + seconds, release.injection)
        early = self._hold(now + seconds, release)
        return actions.Hold(early) if early else actions.HOLD

    def _hold(self, release_at: float, release: Release) -> list[Release]:
        """Hold ``release`` until ``release_at``; returns what the size limit released
        early, marked so in the ledger."""
        return [self.early(r) for r in self._held.push(release_at, release.item.offset, release)]

    def early(self, release: Release) -> Release:
        """``release`` let go before its time, by the size limit or a drain (shutdown,
        revocation, pause): its ledger detail says so."""
        inj = release.injection
        note = {**inj.detail, "released_early": True}
        return Release(release.item, Injection(inj.fault, inj.type, inj.effect, note))

    def due(self, now: float) -> list[Release]:
        return self._held.pop_due(now)

    def drain(self, now: float) -> list[Release]:
        """Released before their time: the ledger says so (``released_early``)."""
        return [self.early(release) for release in self._held.drain()]

    def held(self) -> int:
        return len(self._held)

    def oldest_held(self) -> int | None:
        return self._held.oldest_offset()

    def held_offsets(self) -> list[int]:
        return self._held.offsets()


class ObservingFault(Fault):
    """A fault that sees every record reaching its stage (a ring of recent records)."""

    @abstractmethod
    def scan(self, picks: Picks, chosen: Sequence[bool], now: float) -> Sequence[Action]:
        """One action per record of ``picks`` (every record, in order); ``chosen[i]``: the
        stage selected record ``i`` (the others get ``KEEP``)."""

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        return self.scan(picks, [True] * len(picks), now)


class DecodingFault(Fault):
    """A fault that reads record values (``picks.decode``): its route needs format avro or
    json, and an Avro route the registry. ``ctx`` is set by the stage."""

    ctx: FaultContext

    def report(self, where: str, exc: Exception) -> None:
        """Count (and log once) why the record at ``where`` passes unchanged."""
        from streamchaos.codec.wire import Undecodable

        if isinstance(exc, Undecodable):
            self.ctx.undecodable(exc.reason)
        elif isinstance(exc, FieldError):
            self.ctx.error(self.config.label, exc.reason, f"{where}: {exc}")
        else:
            self.ctx.error(self.config.label, "unexpected", f"{where}: {exc!r}")


class ValueFault(DecodingFault):
    """Decode a picked record, change it, encode it; bad input passes unchanged (reported).

    Subclasses implement ``change`` for one record; draws are seeded per record."""

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        out: list[Action] = []
        for i in range(len(picks)):
            self.rng.seed(picks.seeds[i])
            out.append(self.guarded(picks, i, now))
        return out

    def guarded(self, picks: Picks, i: int, now: float) -> Action:
        """``change`` of record ``i``; one it cannot decode or change passes unchanged."""
        try:
            changed = self.change(picks, i, now)
        except Exception as exc:  # bad input never stops the bridge (DESIGN invariant 5)
            self.report(picks.where(i), exc)
            return KEEP
        return KEEP if changed is None else changed

    @abstractmethod
    def change(self, picks: Picks, i: int, now: float) -> Action | None:
        """What becomes of record ``i`` (``new_value`` or ``modify``), or None to leave it
        alone; raising leaves it alone too, reported."""

    def new_value(self, value: bytes, note: Any, describe: Describe = _as_is) -> ReplaceValue:
        return ReplaceValue(value, self.injection("modify", note, describe))

    def register_variant(
        self, raw: Any, framed: bool, subject: str | None
    ) -> tuple[ParsedSchema, int | None]:
        """A mutated writer schema, parsed, and registered when records come framed from a
        registry: under ``subject``, by default the shadow's own (never a source's)."""
        registry = self.ctx.codec.registry
        schema_id = None
        if registry is not None and framed:
            schema_id = registry.register(subject or f"{self.ctx.shadow}-value", raw)
        return ParsedSchema.of(raw), schema_id


class RunningStats:
    """Welford mean and standard deviation, optionally frozen after ``limit`` values."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.n = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, x: float) -> None:
        if self.limit is not None and self.n >= self.limit:
            return
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (x - self.mean)

    @property
    def sigma(self) -> float:
        return math.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else 0.0


Revalued = tuple[bytes, Any] | None  # (new value, note for ``describe``); None: unchanged


class InPlaceFault(ValueFault):
    """A value fault that changes the picked values of a batch together, as bytes (Avro
    fields are patched in place where the layout allows). Its ledger detail is made from a
    note by ``describe``, only when a ledger line is written. ``value_only`` is False for
    settings that change more than the value; those go through ``change``."""

    value_only = True

    def act(self, picks: Picks, now: float) -> Sequence[Action]:
        if not self.value_only:
            return super().act(picks, now)
        out: list[Action] = []
        label, kind, describe = self._label, self._type, self.describe
        for result in self.revalue(picks, now):
            if result is None:
                out.append(KEEP)
            else:
                value, note = result
                out.append(ReplaceValue(value, Injection(label, kind, "modify", note, describe)))
        return out

    @abstractmethod
    def revalue(self, picks: Picks, now: float) -> list[Revalued]:
        """The new value of each picked record and a note of what changed, in order
        (None: passes unchanged). Bad input is reported and passes unchanged."""

    @abstractmethod
    def describe(self, note: Any) -> dict[str, Any]:
        """The ledger detail of a change ``revalue`` noted."""
