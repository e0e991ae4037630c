"""One experiment clock for every member of a group and every restart: its time zero, and
one writer of each route's episode lines (the wall clock, with a ledger topic).

Both live in a small compacted topic beside the ledger topic, ``<ledger topic>.clock``:

- ``zero/<experiment>/<group>/<member>``: a member's proposal of time zero. The first in
  the topic is the run's (a run of an experiment is its consumer group: members and
  restarts share it; a new group starts the schedules over). A starting member reads the
  topic; when it finds none, it writes its own and reads again, so members that start
  together agree on the one written first, and a restart continues the schedules.
- ``episode/<experiment>/<group>/<route>/<fault>``: the episode written last,
  ``{"window": k, "open": bool, "stopped": bool}``. A route's episode lines are written
  by the member that owns its partition 0. One that gets the partition reads, on its
  loop's next turn,
  what its predecessor wrote, and writes what is missing at the schedule's times: the
  predecessor's open episode's end, the windows it saw itself since then (a window no
  writing member saw ran while the whole group was down: no record met the fault), and
  the current one's start. Each episode is written once, whoever wrote it. Under
  exactly-once the mark is in the transaction with the line; under at-least-once it is
  written once the line landed, so a crash can repeat a line but not lose one. A fault a
  detection stopped stays stopped for the member that takes the route over.

A member that stops ends a route's open episodes only when it reads all of the route's
partitions (no other member carries the faults on); otherwise the schedule, or the next
writer, ends them. Pauses, guardrails and live plan changes stay each member's own: only
the writer's are in the ledger.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka.admin import AdminClient

from streamchaos.bridge.checkpoint import TP
from streamchaos.bridge.clock_topic import READ_TIMEOUT, ClockTopic, Mark, describe_zero
from streamchaos.bridge.topics import prepare_ledger_topic
from streamchaos.config import Config
from streamchaos.engine import EpisodeEvent, Pipeline, Stage
from streamchaos.kafkaconf import shadow_admin_conf
from streamchaos.kafkatools import produce_with_room

log = logging.getLogger(__name__)

LATE = {"late": True}  # a line a new writer owed: written after its time, counts not kept


class Scribe:
    """Which episode lines this member writes, and the marks that say what was written."""

    def __init__(
        self,
        topic: ClockTopic,
        producer: Any,
        exactly_once: bool,
        commit: Callable[[], object] | None = None,
    ) -> None:
        self.topic, self.producer, self.exactly_once = topic, producer, exactly_once
        self.commit = commit  # exactly-once: ends the open transaction (its marks with it)
        self.writes: dict[str, dict[str, Mark]] = {}  # routes whose partition 0 is here
        self.owed: set[str] = set()  # ... of which the marks are to be read
        self.parts: dict[str, set[int]] = {}  # the partitions of each route read here
        self.pending: list[tuple[str, bytes, bytes]] = []  # marks whose lines landed
        self.seen: dict[tuple[str, str], deque[int]] = {}  # windows this member started

    def assigned(self, tps: list[TP]) -> None:
        """Partitions came (a rebalance callback: no I/O here); a route's partition 0 is
        taken over on the loop's next turn (``take_over``)."""
        for topic, part in tps:
            self.parts.setdefault(topic, set()).add(part)
            if part == 0:
                self.owed.add(topic)

    def take_over(self, pipelines: dict[str, Pipeline], now: float) -> list[Any]:
        """Routes whose partition 0 came: the marks their last writer left, and the lines
        missing from them (``(route, event)``)."""
        owed, self.owed = self.owed, set()
        owed &= {t for t, parts in self.parts.items() if 0 in parts}  # still here
        if not owed:
            return []
        if self.exactly_once and self.commit is not None:
            self.commit()  # marks of our open transaction would hold the read back
        marks = self.topic.marks()
        out = []
        for route in sorted(owed):
            self.writes[route] = mine = marks.get(route, {})
            log.info("%s: episodes written here (its partition 0 is)", route)
            pipeline = pipelines.get(route)
            for stage in pipeline.stages if pipeline is not None else []:
                mark = mine.get(stage.name)
                if mark is not None and mark.stopped:
                    stage.stop()  # a detection ended it for the group
                seen = self.seen.get((route, stage.name), ())
                out += [(route, ev) for ev in missing(stage, mark, now, seen)]
        return out

    def revoked(self, tps: list[TP], lost: bool = False) -> None:
        """Partitions went: marks of lines that landed go out first, for the next writer
        (``lost``: another member may write already; they go unsent)."""
        gone = set()
        for topic, part in tps:
            self.parts.get(topic, set()).discard(part)
            if part == 0:
                self.owed.discard(topic)
                if self.writes.pop(topic, None) is not None:
                    gone.add(topic)
                    log.info("%s: episodes written here no more", topic)
        if lost:
            self.pending = [p for p in self.pending if p[0] not in gone]
        self.send(flush=True)

    def alone(self, route: str, partitions: int) -> bool:
        """Whether this member reads every partition of ``route`` (ends its episodes)."""
        return len(self.parts.get(route, ())) >= partitions

    def take(
        self, route: str, stage: Stage, kind: str, window: int | None, stopped: bool = False
    ) -> Mark | None:
        """The mark to leave when a line of ``stage``'s episode (of schedule ``window``,
        None: the stage's last) is written here; None: not written here (another member
        writes the route, or the line is written already). ``stopped``: a detection."""
        window = window if window is not None else stage.window
        if kind == "episode_start" and window is not None:  # what this member saw
            seen = self.seen.setdefault((route, stage.name), deque(maxlen=64))
            if window not in seen:
                seen.append(window)
        marks = self.writes.get(route)
        if marks is None:
            return None
        mark = marks.get(stage.name)
        if kind == "episode_start":
            if mark is not None and mark.open and mark.window == window:
                return None
            return Mark(window, True)
        if mark is None or not mark.open:
            return None
        return Mark(mark.window, False, stopped)

    def wrote(self, route: str, fault: str, mark: Mark, failed: Any) -> Any:
        """The line was handed to the ledger: the mark follows, in its transaction, or
        (at-least-once) by the delivery callback returned, once the line landed; a line
        that failed is ``failed``'s to report, and leaves the mark as it was."""
        marks = self.writes.get(route, {})
        before = marks.get(fault)
        marks[fault] = mark
        key, value = self.topic.mark_record(route, fault, mark)
        if self.exactly_once:
            produce_with_room(self.producer, self.topic.name, value, key)
            return None

        def landed(err: Any, msg: Any) -> None:
            if err is not None:
                failed(err, msg)
                if self.writes.get(route) is marks:  # as it was: the next writer writes it
                    if before is None:
                        marks.pop(fault, None)
                    else:
                        marks[fault] = before
            elif route in self.writes:  # not once the route is handed over
                self.pending.append((route, key, value))

        return landed

    def send(self, flush: bool = False) -> None:
        """Marks of landed lines, to the clock topic (from the loop, not a callback)."""
        pending, self.pending = self.pending, []
        for _, key, value in pending:
            produce_with_room(self.producer, self.topic.name, value, key)
        if flush and pending and not self.exactly_once:
            self.producer.flush(READ_TIMEOUT)


def missing(
    stage: Stage, mark: Mark | None, now: float, seen: Iterable[int] = ()
) -> list[EpisodeEvent]:
    """The lines a new writer owes for ``stage``, at the schedule's times: its
    predecessor's open episode ended; the windows this member saw start (``seen``) since
    that one, ended; the current one started. A window no member that writes now saw
    (the whole group was down) is not written: no record met the fault then."""
    if mark is not None and mark.stopped:
        return []
    out = []
    current = stage.window if stage.in_episode else None
    if mark is not None and mark.open and (current is None or mark.window != current):
        out.append(_event(stage, "episode_end", mark.window, now))
    after = mark.window if mark is not None and mark.window is not None else -1
    for k in sorted({k for k in seen if after < k and k != current}):
        end = _bound(stage, k, 1)
        if end is not None and end <= now:
            out += [_event(stage, "episode_start", k, now), _event(stage, "episode_end", k, now)]
    if stage.in_episode and not (mark is not None and mark.open and mark.window == current):
        again = mark is not None and mark.window == current  # a start after a pause
        if again:
            out.append(EpisodeEvent(stage, "episode_start", now, dict(LATE), window=current))
        else:
            out.append(_event(stage, "episode_start", current, now))
    return out


def _event(stage: Stage, kind: str, window: int | None, now: float) -> EpisodeEvent:
    """An episode line of schedule ``window``, at its bound (``now`` if not passed yet)."""
    bound = _bound(stage, window, 0 if kind == "episode_start" else 1)
    bound = bound if bound is not None and bound <= now else None
    at = bound if bound is not None else now
    return EpisodeEvent(stage, kind, at, dict(LATE), bound=bound, window=window)


def _bound(stage: Stage, window: int | None, side: int) -> float | None:
    bounds = stage.config.schedule.window(window) if window is not None else None
    return None if bounds is None else stage.origin + bounds[side]


def open_clock(
    cfg: Config, admin: AdminClient, producer: Any, commit: Callable[[], object] | None = None
) -> tuple[Config, Scribe | None]:
    """The ledger topic (``admin``'s cluster; made when missing) and the experiment's
    shared clock, where it has one (the wall clock, a ledger topic): ``cfg`` with its
    time zero as ``start_at``, and the scribe of its episodes (``commit``: the bridge's
    commit sequence)."""
    if cfg.ledger.topic:
        prepare_ledger_topic(admin, cfg.ledger.topic)
    name = cfg.ledger.clock_topic
    if cfg.clock != "wall" or name is None:
        return cfg, None
    prepare_ledger_topic(admin, name, config={"cleanup.policy": "compact"})
    topic = ClockTopic(name, f"{cfg.experiment}/{cfg.group_id}", shadow_admin_conf(cfg))
    if cfg.start_at is None:
        zero, before = topic.time_zero(round(time.time() * 1000))
        log.info("%s", describe_zero(zero, before, topic.name))
        cfg = cfg.model_copy(update={"start_at": datetime.fromtimestamp(zero / 1000, UTC)})
    return cfg, Scribe(topic, producer, cfg.delivery == "exactly-once", commit)
