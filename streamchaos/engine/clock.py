"""The experiment's clock: the bridge's own (``WallClock``), or the records' timestamps
(``EventClock``, ``clock: event``). A pipeline asks its clock at what experiment time to
plan a run's records, and which episodes start and end.

Under the wall clock a schedule, a ramp and a budget follow the bridge's time, read once
per loop turn, so the same records replayed at another speed meet other intensities and
other records are chosen. Under the event clock a record's experiment time is its
timestamp minus the experiment's time zero (``start_at``, or the first record's
timestamp), in steps of ``STEP_MS``: what the faults do to a record depends on the record
alone, and the same input and config give the same injections at any speed.

Event-clock episodes are the schedule's active windows (``windows.py``). A route's
watermark is the lowest, over the partitions that have sent records, of the latest time
each reached; a window's episode starts when the watermark enters it and ends when the
watermark passes its end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from streamchaos.engine.stage import Stage, stats
from streamchaos.engine.windows import Change, Marks
from streamchaos.record import Item

log = logging.getLogger(__name__)

STEP_MS = 100  # the schedules are read at this resolution of event time
Segment = tuple[int, int, float]  # msgs[lo:hi] are planned at experiment time ``at``


@dataclass(slots=True)
class EpisodeEvent:
    stage: Stage
    kind: str  # episode_start | episode_end
    at: float  # the bridge's clock
    extra: dict[str, Any] | None = None  # event clock: the bound's timestamp; an end's counts
    bound: float | None = None  # wall clock: the schedule's time of it (see ``scheduled``)
    window: int | None = None  # wall clock: its schedule window, when not the stage's last


class WallClock:
    """The bridge's clock: ``now``, seconds since it started, set once per loop turn."""

    by_event = False  # stages keep windows and a budget per partition under the event clock

    def segments(
        self, msgs: Sequence[Any], start: int, end: int, now: float, marks: Marks, part: int
    ) -> list[Segment]:
        return [(start, end, now)]

    def groups(
        self, items: list[Item], now: float, last: float
    ) -> Iterable[tuple[float, list[Item]]]:
        return [(now, items)]

    def enter(
        self, stages: list[Stage], at: float, paused: bool, partition: int, records: int
    ) -> None:
        """The intensities were set by ``episodes`` for this loop turn."""

    def episodes(
        self, stages: list[Stage], now: float, marks: Marks, paused: bool
    ) -> list[EpisodeEvent]:
        """Intensities at ``now``; one crossing zero starts or ends an episode."""
        events = []
        for stage in stages:
            off = paused or stage.stopped
            new = 0.0 if off else stage.config.schedule.intensity(now - stage.origin)
            if (new > 0) != stage.in_episode:
                bound = None if off else scheduled(stage, now - stage.origin, new > 0)
                if new > 0:
                    stage.begin_episode(now)
                stage.in_episode = new > 0
                kind = "episode_start" if new > 0 else "episode_end"
                events.append(EpisodeEvent(stage, kind, now, bound=bound))
            stage.set_intensity(new)
        return events

    def close(
        self, stages: list[Stage], now: float, marks: Marks, paused: bool
    ) -> list[EpisodeEvent]:
        """At shutdown every open episode ends now (the ledger pairs every start)."""
        events = []
        for stage in stages:
            if stage.in_episode:
                events.append(EpisodeEvent(stage, "episode_end", now))
                stage.in_episode = False
                stage.set_intensity(0.0)
        return events

    def origin(self, now: float, marks: Marks) -> float:
        """Where a stage added while the bridge runs counts its schedule from."""
        return now


class EventClock(WallClock):
    """The experiment's time zero, and the experiment time of records."""

    by_event = True

    def __init__(self, start_ms: int | None = None) -> None:
        self.t0_ms = start_ms  # None: the first record's timestamp, when it comes

    def at(self, ts_ms: int, last: float) -> float:
        """Experiment seconds of a timestamp, in steps of ``STEP_MS``; ``last`` for a
        record without one (-1)."""
        if ts_ms < 0:
            return last
        if self.t0_ms is None:
            self.t0_ms = ts_ms
            when = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat()
            log.info(
                "event clock: time zero is the first record's timestamp, %s (give start_at: "
                "%s to replay or restart on the same schedule)",
                when,
                when,
            )
        return (ts_ms - self.t0_ms) // STEP_MS * STEP_MS / 1000

    def epoch_ms(self, at: float) -> int:
        """The timestamp (epoch ms) of experiment time ``at``."""
        return (self.t0_ms or 0) + round(at * 1000)

    def segments(
        self, msgs: Sequence[Any], start: int, end: int, now: float, marks: Marks, part: int
    ) -> list[Segment]:
        """``msgs[start:end]`` cut where the experiment time changes; the partition's mark
        moves to the latest."""
        out: list[Segment] = []
        last = marks.last(part)
        lo, current = start, None
        for i in range(start, end):
            kind, ts = msgs[i].timestamp()
            at = self.at(ts if kind else -1, last if current is None else current)
            if at != current:
                if current is not None:
                    out.append((lo, i, current))
                lo, current = i, at
        if current is not None:
            out.append((lo, end, current))
            marks.reached(part, max(seg[2] for seg in out), now)
        return out

    def groups(
        self, items: list[Item], now: float, last: float
    ) -> Iterable[tuple[float, list[Item]]]:
        """Released items, in runs of equal experiment time."""
        return [(at, list(g)) for at, g in groupby(items, lambda it: self.at(it.timestamp, last))]

    def enter(
        self, stages: list[Stage], at: float, paused: bool, partition: int, records: int
    ) -> None:
        """Each stage's intensity at experiment time ``at``, where ``records`` records of
        ``partition`` are: they count into the stage's window, and a window the partition
        enters starts the fault's per-episode state over there (by the records' time, not
        the watermark's)."""
        for stage in stages:
            off = paused or stage.stopped
            t = at - stage.origin
            stage.set_intensity(0.0 if off else stage.config.schedule.intensity(t))
            if not off and stage.windows is not None:
                stage.windows.count(t, records, 0)
                stage.enter_window(partition, t)

    def episodes(
        self, stages: list[Stage], now: float, marks: Marks, paused: bool
    ) -> list[EpisodeEvent]:
        """The episodes that start and end as the watermark moves."""
        mark = marks.low(now)
        return [] if mark is None else self._advance(stages, now, mark, paused)

    def close(
        self, stages: list[Stage], now: float, marks: Marks, paused: bool
    ) -> list[EpisodeEvent]:
        """The episodes up to the furthest time seen; then the open ones end there."""
        furthest = marks.furthest()
        events = [] if furthest is None else self._advance(stages, now, furthest, paused)
        for stage in stages:
            assert stage.windows is not None
            if stage.in_episode:  # no bound when no record told the time (all revoked)
                end = None if furthest is None else furthest - stage.origin
                change = ("episode_end", end, stage.windows.stats())
                stage.windows.stop()
                events.append(EpisodeEvent(stage, "episode_end", now, self._detail(stage, change)))
                stage.in_episode = False
                stage.set_intensity(0.0)
        return events

    def origin(self, now: float, marks: Marks) -> float:
        low = marks.low(now)
        return low if low is not None else marks.furthest() or 0.0

    def _advance(
        self, stages: list[Stage], now: float, mark: float, paused: bool
    ) -> list[EpisodeEvent]:
        events = []
        for stage in stages:
            assert stage.windows is not None
            off = paused or stage.stopped
            for change in stage.windows.advance(mark - stage.origin, off):
                if change[0] == "episode_start":
                    stage.begin_episode(now)
                events.append(EpisodeEvent(stage, change[0], now, self._detail(stage, change)))
            stage.in_episode = stage.windows.open is not None
        return events

    def _detail(self, stage: Stage, change: Change) -> dict[str, Any]:
        """An episode line's event-clock detail: its bound's timestamp; an end's counts."""
        _, bound, counts = change
        detail: dict[str, Any] = {}
        if bound is not None:
            detail["event_at"] = self.epoch_ms(stage.origin + bound)
        return detail | stats(*counts) if counts is not None else detail


WALL = WallClock()


def scheduled(stage: Stage, t: float, starting: bool) -> float | None:
    """The schedule's time of an episode's start or end noticed at schedule time ``t``:
    bridges that share ``start_at`` each write the episode, with the same bound, and a
    reader takes it once. None where the schedule did not make it (a start again in the
    same window, after a pause)."""
    schedule = stage.config.schedule
    k = schedule.last_started(t)
    window = schedule.window(k) if k >= 0 else None
    if window is None:
        return None
    if starting:
        if stage.window == k:
            return None
        stage.window = k
        return stage.origin + window[0]
    return stage.origin + window[1] if t >= window[1] else None
