"""Exactly-once with held records: what each commit says of the records beyond its offset.

A partition's commit point stays behind the oldest record a fault holds, so after a crash
or a rebalance the records after it are read again, though most of their outputs are in
committed transactions already. So each transaction's offset commit carries, in its
metadata, how far the partition was read (``end``) and which records in [point, end) were
not done then: those held, each with how many of its outputs had been produced. The member
that reads the partition next skips the done records, and of a held one, the outputs
produced before (``Replay``); ``Progress`` counts outputs and writes the metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from streamchaos.bridge.checkpoint import TP
from streamchaos.engine import Pipeline, Plan
from streamchaos.record import Item

log = logging.getLogger(__name__)

PREFIX = "streamchaos1:"
MAX_METADATA = 3500  # brokers keep offset-commit metadata up to 4096 bytes by default


def encode(point: int, end: int, partial: dict[int, int]) -> str:
    """``streamchaos1:<end - point>:<held>``: each held record as its offset less the
    point, ``*k`` when ``k`` of its outputs were produced; runs of held records with none
    produced as ``first+count``.

    >>> encode(100, 130, {100: 0, 101: 0, 102: 0, 110: 1})
    'streamchaos1:30:0+3,10*1'
    """
    parts: list[str] = []
    run_start, run_len = -1, 0
    for offset in sorted(partial):
        k, rel = partial[offset], offset - point
        if k == 0 and run_len and rel == run_start + run_len:
            run_len += 1
            continue
        if run_len:
            parts.append(f"{run_start}+{run_len}" if run_len > 1 else str(run_start))
            run_len = 0
        if k == 0:
            run_start, run_len = rel, 1
        else:
            parts.append(f"{rel}*{k}")
    if run_len:
        parts.append(f"{run_start}+{run_len}" if run_len > 1 else str(run_start))
    return f"{PREFIX}{end - point}:{','.join(parts)}"


def decode(point: int, text: str | None) -> tuple[int, dict[int, int]] | None:
    """(end, partial) of a commit's metadata; None when it is not the bridge's (a
    commit of another tool, or of at-least-once)."""
    if not text or not text.startswith(PREFIX):
        return None
    span, _, held = text[len(PREFIX) :].partition(":")
    partial: dict[int, int] = {}
    for part in filter(None, held.split(",")):
        if "*" in part:
            rel, k = part.split("*")
            partial[point + int(rel)] = int(k)
        else:
            rel, _, count = part.partition("+")
            for offset in range(point + int(rel), point + int(rel) + int(count or 1)):
                partial[offset] = 0
    return point + int(span), partial


class Replay:
    """A partition read again from its commit point: records in [point, end) that are not
    in ``partial`` are done (skipped); of a partial one, the first ``k`` outputs go."""

    def __init__(self, end: int, partial: dict[int, int]) -> None:
        self.end, self.partial = end, partial

    def done(self, offset: int) -> bool:
        return offset < self.end and offset not in self.partial

    def keep(self, offset: int) -> bool:
        """Whether the next output of ``offset`` is produced (not one produced before)."""
        left = self.partial.get(offset, 0)
        if left:
            self.partial[offset] = left - 1
        return not left

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
        for i in range(start, end):
            if msgs[i].offset() in self.partial:
                items = out.outputs.get(i, [Item.of(msgs[i])])
                out.outputs[i] = [item for item in items if self.keep(item.offset)]
        out.passed = [i for i in out.passed if i not in out.outputs]
        return out


class Progress:
    """Outputs produced per source offset beyond the last commit point, and the replays
    of partitions read again, per partition."""

    def __init__(self) -> None:
        self.counts: dict[TP, dict[int, int]] = {}
        self.replays: dict[TP, Replay] = {}

    def produced(self, tp: TP, offset: int) -> None:
        counts = self.counts.setdefault(tp, {})
        counts[offset] = counts.get(offset, 0) + 1

    def passed(self, tp: TP, offsets: list[int]) -> None:
        """Records a stage picked went out as they came (a spaced duplicate's original)."""
        for offset in offsets:
            self.produced(tp, offset)

    def keep(self, tp: TP, item: Item) -> bool:
        """Whether a released item is produced (not one produced before), counted."""
        replay = self.replays.get(tp)
        return replay is None or replay.keep(item.offset)

    def metadata(self, tp: TP, point: int, end: int, held: list[int]) -> str:
        """The commit's metadata: records in [point, end) held, with their outputs so far.
        A replay not read to its end yet carries on: what it has not reached is as the
        commit it came from said (done, or held with what it had produced)."""
        counts = self.counts.get(tp, {})
        self.counts[tp] = counts = {o: n for o, n in counts.items() if o >= point}
        undone = [o for o in held if o >= point]
        replay = self.replays.get(tp)
        if replay is not None and replay.end > end:
            undone += [o for o in replay.partial if o >= end]
            end = replay.end
        return encode(point, end, {o: counts.get(o, 0) for o in undone})

    def resume(self, tp: TP, point: int, metadata: str | None) -> None:
        """``tp`` is read from ``point`` on (an assignment): replay what the commit says."""
        self.counts.pop(tp, None)
        decoded = decode(point, metadata)
        if decoded is not None and (decoded[0] > point or decoded[1]):
            end, partial = decoded
            log.info(
                "%s[%d]: read again from %d: of the %d records up to %d, %d were held",
                *tp, point, end - point, end, len(partial),
            )  # fmt: skip
            self.replays[tp] = Replay(*decoded)
            for offset, k in decoded[1].items():
                if k:
                    self.counts.setdefault(tp, {})[offset] = k
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
            self.counts.pop(tp, None)
            self.replays.pop(tp, None)
