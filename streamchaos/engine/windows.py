"""Episodes under the event clock (``clock.py``): a route's watermark (``Marks``), and
each stage's schedule windows, opened and closed by it, with the records counted into each
by their own time."""

from __future__ import annotations

from streamchaos.schedule import Schedule

Change = tuple[str, float | None, tuple[int, int] | None]  # kind, schedule time, counts
IDLE = 5.0  # seconds without records after which a partition holds the watermark back no more


class Marks:
    """A route's partitions: the latest experiment time each one's records reached, and
    when (the bridge's clock) it was last heard from (assigned, or a record came).

    The watermark is the lowest time of the partitions heard from in the last ``IDLE``
    seconds; one of them that has sent nothing yet holds it back (None). When all are
    idle, it is the furthest time reached: everything that came was seen."""

    __slots__ = ("heard", "times")

    def __init__(self) -> None:
        self.times: dict[int, float] = {}
        self.heard: dict[int, float] = {}

    def assigned(self, partitions: list[int], now: float) -> None:
        for part in partitions:
            self.heard[part] = now

    def reached(self, part: int, at: float, now: float) -> None:
        self.times[part] = max(at, self.times.get(part, at))
        self.heard[part] = now

    def last(self, part: int) -> float:
        return self.times.get(part, 0.0)

    def low(self, now: float) -> float | None:
        waiting = [part for part, heard in self.heard.items() if now - heard < IDLE]
        if not waiting:
            return self.furthest()
        if any(part not in self.times for part in waiting):
            return None
        return min(self.times[part] for part in waiting)

    def furthest(self) -> float | None:
        return max(self.times.values()) if self.times else None

    def forget(self, partitions: list[int]) -> None:
        for part in partitions:
            self.times.pop(part, None)
            self.heard.pop(part, None)


class Windows:
    """One stage's episodes under the event clock: its schedule's active windows, the
    records counted into each by their own time, opened and closed by the watermark."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.open: tuple[int, float, float] | None = None  # index, start, end
        self.next = 0  # the first window not yet opened or passed
        self.counts: dict[int, list[int]] = {}  # window -> [records, acted on]
        self.paused_in: int | None = None  # the window a pause ended early

    def count(self, t: float, records: int, acted: int) -> None:
        """Records at schedule time ``t``, ``acted`` of them changed; a window already
        passed counts nothing more (a late record)."""
        k = self.schedule.window_index(t)
        if k is not None and (k >= self.next or (self.open is not None and k == self.open[0])):
            tally = self.counts.setdefault(k, [0, 0])
            tally[0] += records
            tally[1] += acted

    def stats(self) -> tuple[int, int]:
        """The open window's (records, acted on) so far."""
        tally = self.counts.get(self.open[0], [0, 0]) if self.open is not None else [0, 0]
        return tally[0], tally[1]

    def advance(self, t: float, off: bool) -> list[Change]:
        """Episode starts and ends as the watermark reaches schedule time ``t``. Windows
        it passed in one step are written only if records fell in them; while ``off``
        (paused, stopped) the open one ends at ``t`` and no other starts."""
        out: list[Change] = []
        if self.open is not None:
            k, _, end = self.open
            if off or t >= end:
                out.append(("episode_end", min(end, t), self._take(k)))
                self.open = None
                if t < end:  # paused inside it: it opens again, from then, when back on
                    self.next, self.paused_in = k, k
        last = self.schedule.last_started(t)
        if last < self.next:
            return out
        passed = sorted(k for k in self.counts if self.next <= k < last)
        if off:  # a window it is still in opens, from then, when it is back on
            if self.schedule.window_index(t) == last:
                self.next, self.paused_in = last, last
            else:
                self.next = last + 1
            self.counts = {k: c for k, c in self.counts.items() if k >= self.next}
            return out
        self.next = last + 1
        for k in passed:
            begin, end = self._bounds(k)
            out += [("episode_start", begin, None), ("episode_end", end, self._take(k))]
        begin, end = self._bounds(last)
        if last == self.paused_in:
            begin, self.paused_in = max(begin, t), None
        if t < end:
            out.append(("episode_start", begin, None))
            self.open = (last, begin, end)
        elif last in self.counts:
            out += [("episode_start", begin, None), ("episode_end", end, self._take(last))]
        return out

    def stop(self) -> None:
        """The open episode was ended elsewhere (detected, the fault removed)."""
        if self.open is not None:
            self._take(self.open[0])
            self.open = None

    def _bounds(self, k: int) -> tuple[float, float]:
        bounds = self.schedule.window(k)
        assert bounds is not None
        return bounds

    def _take(self, k: int) -> tuple[int, int]:
        records, acted = self.counts.pop(k, [0, 0])
        return records, acted
