"""The shared clock's episode writer: which member writes a route's episode lines, and
what a member that takes the route over owes the ledger (pure logic; the clock topic and
the producer are stand-ins, the real ones are in tests/integration/test_event_clock.py)."""

from __future__ import annotations

from typing import Any

from streamchaos.bridge.clock_topic import ClockTopic
from streamchaos.bridge.shared_clock import Mark, Scribe, missing
from streamchaos.config import config_from_dict
from streamchaos.engine import Pipeline

SCHEDULE = {"start": "10s", "every": "20s", "on": "5s"}  # windows at 10-15, 30-35, 50-55...


def pipeline() -> Pipeline:
    fault = {"type": "drop", "name": "f", "schedule": SCHEDULE}
    raw = {
        "experiment": "e",
        "routes": [{"source": "src", "shadow": "src.shadow", "faults": [fault]}],
    }
    return Pipeline("src", config_from_dict(raw, env={}).routes[0].faults, 7)


class Topic:
    """The clock topic: the marks a predecessor left (of route ``src``)."""

    name, scope = "ledger.clock", "e/g"
    mark_record = ClockTopic.mark_record  # the real format

    def __init__(self, marks: dict[str, Mark] | None = None) -> None:
        self.left = {"src": marks or {}, "other": {"f": Mark(9, True)}}
        self.reads = 0

    def marks(self) -> dict[str, dict[str, Mark]]:
        self.reads += 1
        return {route: dict(marks) for route, marks in self.left.items()}


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.flushed = 0

    def produce(self, topic: str, value: bytes, key: bytes, **kwargs: Any) -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout: float) -> int:
        self.flushed += 1
        return 0


def at(pipe: Pipeline, now: float) -> Any:
    """The pipeline's one stage after a tick at ``now``."""
    pipe.tick(now)
    return pipe.stages[0]


def lines(events: list[Any]) -> list[tuple[str, float, float | None, int | None]]:
    return [(ev.kind, ev.at, ev.bound, ev.window) for ev in events]


def test_a_new_writer_owes_the_start_of_the_episode_no_one_wrote():
    stage = at(pipeline(), 31.0)  # in window 1 since 30 s
    [ev] = missing(stage, None, 31.0)
    assert lines([ev]) == [("episode_start", 30.0, 30.0, 1)]
    assert ev.extra == {"late": True}  # the ledger says it was written after its time


def test_a_new_writer_ends_its_predecessors_episode_at_the_windows_end():
    stage = at(pipeline(), 31.0)
    assert lines(missing(stage, Mark(0, True), 31.0)) == [
        ("episode_end", 15.0, 15.0, 0),  # at the schedule's time, not now
        ("episode_start", 30.0, 30.0, 1),
    ]
    stage = at(pipeline(), 20.0)  # between windows: only the end is owed
    assert lines(missing(stage, Mark(0, True), 20.0)) == [("episode_end", 15.0, 15.0, 0)]


def test_a_new_writer_owes_nothing_its_predecessor_wrote():
    stage = at(pipeline(), 31.0)
    assert missing(stage, Mark(1, True), 31.0) == []
    stage = at(pipeline(), 20.0)
    assert missing(stage, Mark(0, False), 20.0) == []


def test_a_start_again_in_a_window_a_pause_ended_has_no_schedule_bound():
    stage = at(pipeline(), 32.0)
    assert lines(missing(stage, Mark(1, False), 32.0)) == [("episode_start", 32.0, None, 1)]


def test_a_new_writer_writes_the_windows_it_saw_while_partition_0_had_no_owner():
    stage = at(pipeline(), 56.0)  # windows 1 (30-35) and 2 (50-55) passed since the mark
    assert lines(missing(stage, Mark(0, True), 56.0, seen=[1, 2])) == [
        ("episode_end", 15.0, 15.0, 0),
        ("episode_start", 30.0, 30.0, 1), ("episode_end", 35.0, 35.0, 1),
        ("episode_start", 50.0, 50.0, 2), ("episode_end", 55.0, 55.0, 2),
    ]  # fmt: skip
    # a member that saw none of them (the group was down) writes none: no record met them
    assert lines(missing(stage, Mark(0, True), 56.0)) == [("episode_end", 15.0, 15.0, 0)]


def test_a_fault_a_detection_stopped_stays_stopped_for_the_next_writer():
    pipe = pipeline()
    at(pipe, 31.0)
    scribe = Scribe(Topic({"f": Mark(1, False, stopped=True)}), Producer(), exactly_once=True)  # type: ignore[arg-type]
    scribe.assigned([("src", 0)])
    assert scribe.take_over({"src": pipe}, 31.0) == []  # no start of window 1 again
    assert pipe.stages[0].stopped


def test_only_the_owner_of_partition_0_writes_and_each_line_once():
    pipe, producer = pipeline(), Producer()
    stage = at(pipe, 31.0)
    topic = Topic({"f": Mark(1, True)})
    commits = []
    scribe = Scribe(topic, producer, exactly_once=True, commit=lambda: commits.append(1))  # type: ignore[arg-type]
    scribe.assigned([("src", 1)])
    assert scribe.take_over({"src": pipe}, 31.0) == [] and topic.reads == 0
    assert scribe.take("src", stage, "episode_end", None) is None  # partition 0 is elsewhere
    scribe.assigned([("src", 0)])  # in the rebalance callback: nothing read yet
    assert topic.reads == 0
    assert scribe.take_over({"src": pipe}, 31.0) == []  # nothing owed
    assert commits == [1]  # exactly-once: its own open transaction ended first
    assert scribe.take("src", stage, "episode_start", None) is None  # written already
    mark = scribe.take("src", stage, "episode_end", None)
    assert mark == Mark(1, False)
    scribe.wrote("src", "f", mark, failed=None)  # in the line's transaction
    [(topic_name, key, value)] = producer.sent
    assert (topic_name, key) == ("ledger.clock", b"episode/e/g/src/f")
    assert value == b'{"window": 1, "open": false, "stopped": false}'
    assert scribe.take("src", stage, "episode_end", None) is None  # ended once
    scribe.revoked([("src", 0)])
    assert scribe.take("src", stage, "episode_start", 2) is None  # handed over


def test_a_route_with_no_fault_yet_is_written_by_its_partition_0_owner_once_one_comes():
    scribe = Scribe(Topic(), Producer(), exactly_once=True)  # type: ignore[arg-type]
    scribe.assigned([("src", 0)])
    assert scribe.take_over({}, 31.0) == []  # no pipeline on the route yet
    stage = at(pipeline(), 31.0)  # a fault added over HTTP
    assert scribe.take("src", stage, "episode_start", None) == Mark(1, True)


def test_at_least_once_the_mark_follows_only_a_line_that_landed():
    pipe, producer = pipeline(), Producer()
    stage = at(pipe, 31.0)
    scribe = Scribe(Topic(), producer, exactly_once=False)  # type: ignore[arg-type]
    scribe.assigned([("src", 0)])
    [(route, ev)] = scribe.take_over({"src": pipe}, 31.0)
    mark = scribe.take(route, stage, ev.kind, ev.window)
    failures = []
    landed = scribe.wrote(route, "f", mark, failed=lambda err, msg: failures.append(err))
    assert producer.sent == []  # not before the line is known to be in the ledger
    landed("broker down", None)
    scribe.send()
    assert producer.sent == [] and failures == ["broker down"]  # reported as a lost line
    assert scribe.take(route, stage, "episode_start", None) == Mark(1, True)  # not written
    landed = scribe.wrote(route, "f", mark, failed=failures.append)
    landed(None, object())
    scribe.send()
    assert [key for _, key, _ in producer.sent] == [b"episode/e/g/src/f"]


def test_marks_of_a_route_lost_to_another_member_are_not_sent():
    pipe, producer = pipeline(), Producer()
    stage = at(pipe, 31.0)
    scribe = Scribe(Topic(), producer, exactly_once=False)  # type: ignore[arg-type]
    scribe.assigned([("src", 0)])
    scribe.take_over({"src": pipe}, 31.0)
    landed = scribe.wrote("src", "f", scribe.take("src", stage, "episode_start", None), None)
    landed(None, object())  # landed, not sent yet
    scribe.revoked([("src", 0)], lost=True)  # the new owner may have written since
    later = scribe.wrote("src", "f", Mark(1, False), None)
    later(None, object())
    scribe.send()
    assert producer.sent == []


def test_a_member_ends_episodes_at_shutdown_only_when_it_reads_every_partition():
    scribe = Scribe(Topic(), Producer(), exactly_once=False)  # type: ignore[arg-type]
    scribe.assigned([("src", 0), ("src", 1)])
    assert not scribe.alone("src", 3)
    scribe.assigned([("src", 2)])
    assert scribe.alone("src", 3)
