"""Exactly-once with held records: what each commit says of the records beyond its offset.

A partition's commit point stays behind the oldest record a fault holds, so after a crash
or a rebalance the records after it are read again, though most of their outputs are in
committed transactions already. So each transaction's offset commit carries, in its
metadata, how far the partition was read (``end``) and which records in [point, end) were
not done then: those held, each with the outputs (and drops) of it already written. The
member that reads the partition next skips the done records, and of a held one, what was
written before (``Replay``); ``Progress`` keeps what was written and makes the metadata.

An output is named by what made it, never by when (``output_id``): the record itself, or
a copy by the faults that made it and its number. So a replay whose holds release in
another order (an outage on the new member's clock) or early (a drain) still drops the
right ones. Names are counted: two copies may share one.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from streamchaos.bridge.checkpoint import TP
from streamchaos.engine import Pipeline, Plan
from streamchaos.record import Item

log = logging.getLogger(__name__)

PREFIX = "streamchaos1:"
MAX_METADATA = 3500  # brokers keep offset-commit metadata up to 4096 bytes by default
Written = Counter[str]  # the names of what a record's outputs and drops wrote, counted
Partial = dict[int, Written]  # held offset -> what of it was written


def output_id(item: Item, dropped: bool = False) -> str:
    """``o`` for the record itself; a copy, a short hash of the faults that made it and
    its number. A drop's name is its item's, after ``-``.

    >>> output_id(Item(None)), output_id(Item(None), dropped=True)
    ('o', '-o')
    """
    made = [f"{i.fault}#{i.detail.get('copy', '')}" for i in item.injections if i.effect == "extra"]
    name = "%x" % (zlib.crc32("|".join(made).encode()) & 0xFFFFFF) if made else "o"
    return "-" + name if dropped else name


def encode(point: int, end: int, partial: Partial) -> str:
    """``streamchaos1:<end - point>:<held>``: each held record as its offset less the
    point, ``*name.name`` with what of it was written; runs of held records with nothing
    written as ``first+count``.

    >>> encode(100, 130, {100: Counter(), 101: Counter(), 102: Counter(), 110: Counter("o")})
    'streamchaos1:30:0+3,10*o'
    """
    parts: list[str] = []
    run_start, run_len = -1, 0
    for offset in sorted(partial):
        written, rel = partial[offset], offset - point
        if not written and run_len and rel == run_start + run_len:
            run_len += 1
            continue
        if run_len:
            parts.append(f"{run_start}+{run_len}" if run_len > 1 else str(run_start))
            run_len = 0
        if not written:
            run_start, run_len = rel, 1
        else:
            parts.append(f"{rel}*{'.'.join(sorted(written.elements()))}")
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
            rel, names = part.split("*")
            partial[point + int(rel)] = Counter(names.split("."))
        else:
            rel, _, count = part.partition("+")
            for offset in range(point + int(rel), point + int(rel) + int(count or 1)):
                partial[offset] = Counter()
    return point + int(span), partial


class Replay:
    """A partition read again from its commit point: records in [point, end) that are not
    in ``partial`` are done (skipped); of a partial one, what was written before goes."""

    def __init__(self, end: int, partial: Partial) -> None:
        self.end, self.partial = end, partial

    def done(self, offset: int) -> bool:
        return offset < self.end and offset not in self.partial

    def pending(self) -> bool:
        """Whether something written before is still to be dropped."""
        return any(n > 0 for written in self.partial.values() for n in written.values())

    def take(self, item: Item, dropped: bool = False) -> bool:
        """Whether ``item`` (its output, or its drop) is to be written: False, once, for
        each written before."""
        written = self.partial.get(item.offset)
        name = output_id(item, dropped) if written else ""
        if not written or not written[name]:
            return True
        written[name] -= 1
        return False

    def plan(
        self, pipeline: Pipeline | None, part: int, msgs: Sequence[Any], start: int, end: int,
        now: float,
    ) -> Plan:  # fmt: skip
        """The pipeline over the records of ``msgs[start:end]`` that are not done; a done
        one writes nothing, and a held one's outputs written before are left out (its
        drops, by ``Progress.dropped``)."""
        out = Plan({}, [])
        lo = start
        for i in range(start, end + 1):  # each run of records not done, between done ones
            if i < end and not self.done(msgs[i].offset()):
                continue
            if lo < i and pipeline is not None:
                plan = pipeline.plan(part, msgs, lo, i - lo, now)
                out.outputs.update(plan.outputs)
                out.dropped += plan.dropped
                out.passed += plan.passed
                out.deferred += [d for d in plan.deferred if self.take(d.item)]
            if i < end:
                out.outputs[i] = []
            lo = i + 1
        for i in range(start, end):  # a held one that goes out as it came: an output too
            if i not in out.outputs and msgs[i].offset() in self.partial:
                out.outputs[i] = [Item.of(msgs[i])]
        for i, items in out.outputs.items():  # a record's place may hold others' (reorder)
            out.outputs[i] = [item for item in items if self.take(item)]
        out.passed = [i for i in out.passed if i not in out.outputs]
        return out


class Progress:
    """What was written per source offset beyond the last commit point, and the replays
    of partitions read again, per partition."""

    def __init__(self) -> None:
        self.written: dict[TP, dict[int, Written]] = {}
        self.replays: dict[TP, Replay] = {}

    def wrote(self, tp: TP, offset: int, name: str) -> None:
        self.written.setdefault(tp, {}).setdefault(offset, Counter())[name] += 1

    def passed(self, tp: TP, offsets: list[int]) -> None:
        """Records a stage picked went out as they came (a spaced duplicate's original)."""
        for offset in offsets:
            self.wrote(tp, offset, "o")

    def dropped(self, route: str, items: list[Item]) -> list[Item]:
        """Of items of ``route`` dropped, those whose drop is written (not one written
        before)."""
        kept = []
        for item in items:
            tp = (route, item.partition)
            replay = self.replays.get(tp)
            if replay is None or replay.take(item, dropped=True):
                self.wrote(tp, item.offset, output_id(item, dropped=True))
                kept.append(item)
        return kept

    def take(self, tp: TP, item: Item) -> bool:
        """Whether a released item goes out (not an output written before)."""
        replay = self.replays.get(tp)
        return replay is None or replay.take(item)

    def metadata(self, tp: TP, point: int, end: int, held: list[int]) -> str:
        """The commit's metadata: records in [point, end) held, with what of them was
        written. A replay not read to its end yet carries on: what it has not reached is
        as the commit it came from said. Only the held records' names are kept after."""
        written = self.written.get(tp, {})
        undone = [o for o in held if o >= point]
        replay = self.replays.get(tp)
        if replay is not None and replay.end > end:
            undone += [o for o in replay.partial if o >= end]
            end = replay.end
        self.written[tp] = kept = {o: written[o] for o in undone if o in written}
        return encode(point, end, {o: kept.get(o, Counter()) for o in undone})

    def resume(self, tp: TP, point: int, metadata: str | None) -> None:
        """``tp`` is read from ``point`` on (an assignment): replay what the commit says."""
        self.written.pop(tp, None)
        self.replays.pop(tp, None)
        decoded = decode(point, metadata)
        if decoded is None or (decoded[0] <= point and not decoded[1]):
            return
        end, partial = decoded
        log.info(
            "%s[%d]: read again from %d: of the %d records up to %d, %d were held",
            *tp, point, end - point, end, len(partial),
        )  # fmt: skip
        self.written[tp] = {o: Counter(names) for o, names in partial.items() if names}
        self.replays[tp] = Replay(end, partial)

    def replay(self, tp: TP, first: int) -> Replay | None:
        """The replay a run from ``first`` on goes through; one read past, with nothing
        left to drop, is over."""
        replay = self.replays.get(tp)
        if replay is not None and first >= replay.end and not replay.pending():
            del self.replays[tp]
            return None
        return replay

    def forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self.written.pop(tp, None)
            self.replays.pop(tp, None)
