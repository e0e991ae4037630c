"""Exactly-once with held records: what each commit says of the records beyond its offset.

A partition's commit point stays behind the oldest record a fault holds, so after a crash
or a rebalance the records after it are read again, though most of their outputs are in
committed transactions already. So each transaction's offset commit carries, in its
metadata, how far the partition was read (``end``) and which records in [point, end) were
not done then: those held, each with which of its outputs had been produced. The member
that reads the partition next skips the done records, and of a held one, the outputs
produced before (``Replay``); ``Progress`` keeps what was produced and writes the metadata.

An output is named by what made it (``output_id``): the record itself, or a copy (a
``duplicate`` copy, a ``stale_replay`` injection), so a replay whose holds release in
another order (an outage on another member's clock) still drops the right ones.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Any

from streamchaos.bridge.checkpoint import TP
from streamchaos.engine import Pipeline, Plan
from streamchaos.record import Item

log = logging.getLogger(__name__)

PREFIX = "streamchaos1:"
MAX_METADATA = 3500  # brokers keep offset-commit metadata up to 4096 bytes by default


Partial = dict[int, set[str]]  # held offset -> ids of its outputs produced


def output_id(item: Item) -> str:
    """``o`` for the record itself; a copy's id is a short hash of the injections that
    made it (the fault and the copy's detail)."""
    extras = [
        f"{i.fault}:{sorted(i.detail.items())}" for i in item.injections if i.effect == "extra"
    ]
    return "%x" % (zlib.crc32("|".join(extras).encode()) & 0xFFFF) if extras else "o"


def encode(point: int, end: int, partial: Partial) -> str:
    """``streamchaos1:<end - point>:<held>``: each held record as its offset less the
    point, ``*id.id`` with the outputs produced; runs of held records with none produced
    as ``first+count``.

    >>> encode(100, 130, {100: set(), 101: set(), 102: set(), 110: {"o"}})
    'streamchaos1:30:0+3,10*o'
    """
    parts: list[str] = []
    run_start, run_len = -1, 0
    for offset in sorted(partial):
        ids, rel = partial[offset], offset - point
        if not ids and run_len and rel == run_start + run_len:
            run_len += 1
            continue
        if run_len:
            parts.append(f"{run_start}+{run_len}" if run_len > 1 else str(run_start))
            run_len = 0
        if not ids:
            run_start, run_len = rel, 1
        else:
            parts.append(f"{rel}*{'.'.join(sorted(ids))}")
    if run_len:
        parts.append(f"{run_start}+{run_len}" if run_len > 1 else str(run_start))
    return f"{PREFIX}{end - point}:{','.join(parts)}"


def decode(point: int, text: str | None) -> tuple[int, Partial] | None:
    """(end, partial) of a commit's metadata; None when it is not the bridge's (a
    commit of another tool, or of at-least-once)."""
    if not text or not text.startswith(PREFIX):
        return None
    span, _, held = text[len(PREFIX) :].partition(":")
    partial: Partial = {}
    for part in filter(None, held.split(",")):
        if "*" in part:
            rel, ids = part.split("*")
            partial[point + int(rel)] = set(ids.split("."))
        else:
            rel, _, count = part.partition("+")
            for offset in range(point + int(rel), point + int(rel) + int(count or 1)):
                partial[offset] = set()
    return point + int(span), partial


class Replay:
    """A partition read again from its commit point: records in [point, end) that are not
    in ``partial`` are done (skipped); of a partial one, the outputs produced before go."""

    def __init__(self, end: int, partial: Partial) -> None:
        self.end, self.partial = end, partial

    def done(self, offset: int) -> bool:
        return offset < self.end and offset not in self.partial

    def keep(self, item: Item) -> bool:
        """Whether ``item`` is produced (not an output produced before)."""
        produced = self.partial.get(item.offset)
        if not produced:
            return True
        name = output_id(item)
        if name not in produced:
            return True
        produced.discard(name)
        return False

    def plan(
        self, pipeline: Pipeline | None, part: int, msgs: Sequence[Any], start: int, end: int,
        now: float,
    ) -> Plan:  # fmt: skip
        """The pipeline over the records of ``msgs[start:end]`` that are not done; a done
        one produces nothing, and a held one's outputs produced before are dropped."""
        out = Plan({}, [])
        lo = start
        for i in [*range(start, end), end]:
            if i < end and not self.done(msgs[i].offset()):
                continue
            if lo < i and pipeline is not None:
                plan = pipeline.plan(part, msgs, lo, i - lo, now)
                out.outputs.update(plan.outputs)
                out.dropped += plan.dropped
                out.passed += plan.passed
            if i < end:
                out.outputs[i] = []
            lo = i + 1
        for i in range(start, end):  # a held one that goes out as it came: an output too
            if i not in out.outputs and msgs[i].offset() in self.partial:
                out.outputs[i] = [Item.of(msgs[i])]
        for i, items in out.outputs.items():  # a record's place may hold others' (reorder)
            out.outputs[i] = [item for item in items if self.keep(item)]
        out.passed = [i for i in out.passed if i not in out.outputs]
        return out


class Progress:
    """The outputs produced per source offset beyond the last commit point, and the
    replays of partitions read again, per partition."""

    def __init__(self) -> None:
        self.outputs: dict[TP, dict[int, set[str]]] = {}
        self.replays: dict[TP, Replay] = {}

    def produced(self, tp: TP, offset: int, name: str) -> None:
        self.outputs.setdefault(tp, {}).setdefault(offset, set()).add(name)

    def passed(self, tp: TP, offsets: list[int]) -> None:
        """Records a stage picked went out as they came (a spaced duplicate's original)."""
        for offset in offsets:
            self.produced(tp, offset, "o")

    def keep(self, tp: TP, item: Item) -> bool:
        """Whether a released item is produced (not an output produced before)."""
        replay = self.replays.get(tp)
        return replay is None or replay.keep(item)

    def metadata(self, tp: TP, point: int, end: int, held: list[int]) -> str:
        """The commit's metadata: records in [point, end) held, with their outputs so far.
        A replay not read to its end yet carries on: what it has not reached is as the
        commit it came from said (done, or held with what it had produced)."""
        outputs = self.outputs.get(tp, {})
        self.outputs[tp] = outputs = {o: ids for o, ids in outputs.items() if o >= point}
        undone = [o for o in held if o >= point]
        replay = self.replays.get(tp)
        if replay is not None and replay.end > end:
            undone += [o for o in replay.partial if o >= end]
            end = replay.end
        return encode(point, end, {o: outputs.get(o, set()) for o in undone})

    def resume(self, tp: TP, point: int, metadata: str | None) -> None:
        """``tp`` is read from ``point`` on (an assignment): replay what the commit says."""
        self.outputs.pop(tp, None)
        decoded = decode(point, metadata)
        if decoded is not None and (decoded[0] > point or decoded[1]):
            end, partial = decoded
            log.info(
                "%s[%d]: read again from %d: of the %d records up to %d, %d were held",
                *tp, point, end - point, end, len(partial),
            )  # fmt: skip
            self.outputs[tp] = {o: set(ids) for o, ids in partial.items() if ids}
            self.replays[tp] = Replay(end, partial)
        else:
            self.replays.pop(tp, None)

    def replay(self, tp: TP, first: int) -> Replay | None:
        replay = self.replays.get(tp)
        if replay is not None and first >= replay.end and not any(replay.partial.values()):
            del self.replays[tp]  # read past it, nothing left to drop
            return None
        return replay

    def forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self.outputs.pop(tp, None)
            self.replays.pop(tp, None)
