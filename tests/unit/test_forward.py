"""The hot loop and what it leaves for the commit: runs, delivery reports, ledger lines,
counters. (What lands where, against the one-record-at-a-time reference, is
test_equivalence.py.)"""

from __future__ import annotations

import json
import random

import confluent_kafka as ck
import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge.checkpoint import OffsetTracker
from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.runs import runs
from streamchaos.bridge.setup import RouteState
from streamchaos.config import config_from_dict
from streamchaos.ledger import Ledger
from streamchaos.lineage import LINEAGE_HEADER
from streamchaos.metrics import Metrics
from tests.fakes import Producer


def bridge(faults=(), ledger=None, producer=None, shadow_partitions=2, **settings):
    raw = {"experiment": "x", "routes": [{"source": "src", "shadow": "src.shadow"}]}
    raw["routes"][0]["faults"] = list(faults)
    raw["bridge"] = settings
    cfg = config_from_dict(raw, env={})
    producer = producer or Producer()
    ledger = ledger or Ledger("x", None, None, keep=True)
    registry = CollectorRegistry()
    journal = Journal(cfg, ledger, Metrics(registry, cfg), 0.0)
    routes = {"src": RouteState(cfg.routes[0], shadow_partitions, cfg.seed)}
    if routes["src"].pipeline is not None:
        journal.watch("src", routes["src"].pipeline)
    tracker = OffsetTracker()
    fwd = Forwarder(cfg, producer, tracker, journal, routes)
    tracker.held_floor = fwd.held_floor
    return fwd, producer, ledger, registry


def messages(offsets, partition=0):
    return [
        ck.Message(topic="src", partition=partition, offset=o, value=b"v%d" % o, key=b"k")
        for o in offsets
    ]


def test_runs_are_the_consecutive_offsets_of_one_partition():
    """Whatever the interleaving and the gaps, each run is a maximal stretch of one
    partition's consecutive offsets (checked against the plain definition)."""
    for trial in range(300):
        rng = random.Random(trial)
        msgs, nxt = [], {0: 0, 1: 0, 2: 0}
        for _ in range(rng.randrange(1, 30)):
            part = rng.choice([0, 1, 2])
            for _ in range(rng.randrange(1, 9)):
                nxt[part] += rng.choice([0, 0, 0, 1, 2])
                msgs += messages([nxt[part]], part)
                nxt[part] += 1
        want, start = [], 0
        for i in range(1, len(msgs) + 1):
            if i == len(msgs) or (
                msgs[i].partition() != msgs[i - 1].partition()
                or msgs[i].offset() != msgs[i - 1].offset() + 1
            ):
                want.append((start, i))
                start = i
        assert runs(msgs, "src") == want, trial


def test_a_run_reports_only_its_first_and_last_record():
    """No ledger needs their shadow offsets: 2 reports for a run of 500 records, and the
    commit point moves once the last one came."""
    fwd, producer, _, _ = bridge(ledger=Ledger("x", None, None))
    fwd.forward(messages(range(500)), 0.0)
    assert producer._queued and len(producer._queued) == 2
    assert fwd.tracker.to_commit() == {("src", 0): 0}
    producer.poll()
    assert fwd.tracker.to_commit() == {("src", 0): 500}


def test_a_record_lost_between_reported_ones_keeps_the_run_uncommitted():
    """The shadow offsets of the first and last record are one too close: something in
    between never landed. Nothing of the run is committed, and it counts as failed."""
    fwd, producer, _, _ = bridge(producer=Producer(lose={b"v7"}))
    completed = []
    fwd.tracker.on_complete = completed.append
    fwd.forward(messages(range(20)), 0.0)
    fwd.forward(messages(range(20, 30)), 0.0)
    producer.poll()
    assert fwd.tracker.to_commit() == {("src", 0): 0}
    assert [b.failed for b in completed] == [{"src": 1}, {}]
    assert fwd.tracker.failed_outputs == 1


def test_a_failed_report_keeps_the_run_uncommitted():
    fwd, producer, _, _ = bridge(producer=Producer(fail_topic="src.shadow"))
    fwd.forward(messages(range(10)), 0.0)
    producer.poll()  # neither end landed: nothing of the run is proven
    assert fwd.tracker.to_commit() == {("src", 0): 0} and fwd.tracker.failed_outputs == 10


def test_lineage_lines_say_where_every_record_landed():
    fwd, producer, ledger, _ = bridge([{"type": "drop", "fraction": 0.3}])
    fwd.tick(0.0)
    fwd.forward(messages(range(0, 40)) + messages(range(3, 9), 1), 0.0)
    producer.poll()
    traced = {}
    for e in ledger.entries:
        if e["kind"] == "lineage":
            at = e["shadow"]["offset"]
            for first, count in e["source"]["offsets"]:
                for off in range(first, first + count):
                    traced[(e["shadow"]["partition"], at)] = (e["source"]["partition"], off)
                    at += 1
    dropped = {
        (e["source"]["partition"], e["source"]["offset"])
        for e in ledger.entries
        if e["kind"] == "injection"
    }
    landed = {(p, n): rec[1] for p, out in producer.out.items() for n, rec in enumerate(out)}
    assert set(traced) == set(landed) and dropped
    sent = {(0, o) for o in range(40)} | {(1, o) for o in range(3, 9)}
    assert {traced[k] for k in landed} == sent - dropped
    assert all(landed[k] == b"v%d" % traced[k][1] for k in landed)


def test_the_lineage_header_goes_on_every_record_when_asked():
    fwd, producer, _, _ = bridge(lineage_header=LINEAGE_HEADER)
    fwd.forward(messages(range(5)), 0.0)
    headers = [rec[2] for rec in producer.out[0]]
    assert headers == [((LINEAGE_HEADER, b"src/0/%d" % o),) for o in range(5)]


def test_a_shadow_with_fewer_partitions_gets_a_header_and_a_report_per_record():
    """The key chooses the shadow partition: the order of records proves nothing there."""
    fwd, producer, _, _ = bridge(shadow_partitions=1, producer=Producer())
    fwd.forward(messages(range(4), partition=1), 0.0)
    assert len(producer._queued) == 4
    headers = [rec[2] for rec in producer.out[0]]
    assert headers == [((LINEAGE_HEADER, b"src/1/%d" % o),) for o in range(4)]
    producer.poll()
    assert fwd.tracker.to_commit() == {("src", 1): 4}


@pytest.mark.parametrize("fault", [{"type": "drop"}, {"type": "duplicate", "copies": 1}])
@pytest.mark.parametrize("ledger_fails", [False, True])
@pytest.mark.parametrize("records", [1, 5])
def test_ledger_topic_lines_hold_the_commit_point(fault, ledger_fails, records):
    """Ground truth before commits: an injection's source offset is committed only once its
    ledger line reached the ledger topic (DESIGN invariants 1 and 4); a line that finally
    fails keeps it uncommitted, like a shadow record that failed."""
    producer = Producer(fail_topic="ledger.t" if ledger_fails else None)
    ledger = Ledger("x", None, "ledger.t", producer)
    fwd, _, _, _ = bridge([fault | {"fraction": 1.0}], ledger=ledger, producer=producer)
    completed = []
    fwd.tracker.on_complete = completed.append
    fwd.tick(0.0)  # the fault's episode starts
    fwd.forward(messages(range(records)), 0.0)
    producer.poll()  # shadow records land: their ledger lines are written, not yet sent
    assert fwd.tracker.to_commit() == {("src", 0): 0}
    kinds = sorted(json.loads(value)["kind"] for value, _ in ledger.outbox)
    lineage = ["lineage"] if fault["type"] != "drop" else []
    assert kinds == ["episode_start", *(["injection"] * records), *lineage]
    ledger.send()
    producer.poll()  # the ledger lines' delivery reports
    lines = records + len(lineage)
    assert fwd.tracker.to_commit() == {("src", 0): 0 if ledger_fails else records}
    assert fwd.tracker.failed_outputs == (lines if ledger_fails else 0)
    assert ledger.failed == (1 if ledger_fails else 0)  # the episode line
    assert sum(b.failed.get("src", 0) for b in completed) == (lines if ledger_fails else 0)


@pytest.mark.parametrize("ends", ["on its schedule", "at shutdown"])
def test_counters_and_episode_tallies_agree_with_the_ledger(ends):
    """Injections are counted once per loop turn (``settle``); an episode's end must still
    carry every injection the ledger has, and so must the Prometheus counter."""
    fault = {"type": "duplicate", "copies": 1, "fraction": 1.0}
    fwd, producer, ledger, registry = bridge([fault | {"schedule": {"start": 0, "duration": 10}}])
    fwd.tick(0.0)
    fwd.forward(messages(range(7)), 1)
    producer.poll()  # delivery reports: the ledger lines, counted but not yet settled
    if ends == "on its schedule":
        fwd.tick(11.0)
    else:
        fwd.journal.settle()
        fwd.journal.close_episodes("src", fwd.routes["src"].pipeline, 5.0)
    [end] = [e for e in ledger.entries if e["kind"] == "episode_end"]
    injected = sum(e["kind"] == "injection" for e in ledger.entries)
    labels = {"experiment": "x", "route": "src", "fault": "duplicate", "type": "duplicate"}
    assert end["detail"]["injected"] == injected == 7
    assert registry.get_sample_value("streamchaos_injections_total", labels) == 7


PIPELINES = {
    "delay": [{"type": "delay", "fraction": 0.3, "delay": "1s"}],
    "duplicate+drop": [
        {"type": "duplicate", "fraction": 0.2, "copies": 1},
        {"type": "drop", "fraction": 0.3},
    ],
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
@pytest.mark.parametrize("fails", [False, True])
def test_without_a_ledger_injections_are_counted_and_commits_move_the_same(name, fails):
    """No ledger: injected records need no report of their own. They are counted as many
    as a run with a ledger writes lines, the shadow gets the same records, and commit
    points move as far."""
    faults = [f | {"schedule": {"start": 0, "duration": 10}} for f in PIPELINES[name]]
    outcome = {}
    for kept in (True, False):
        producer = Producer("src.shadow" if fails else None)
        ledger = Ledger("x", None, None, keep=kept)
        fwd, _, _, registry = bridge(faults, ledger=ledger, producer=producer)
        fwd.tick(0.0)
        for first in range(0, 60, 7):
            fwd.forward(messages(range(first, first + 7)), 1.0)
            producer.poll()
        fwd.tick(5.0)  # the delays are over: released
        producer.poll()
        fwd.tick(11.0)  # the episodes end, with their tallies
        counts = {
            s.labels["fault"]: s.value
            for m in registry.collect()
            if m.name == "streamchaos_injections"
            for s in m.samples
            if s.name.endswith("_total")
        }
        lines = [e for e in ledger.entries or [] if e["kind"] == "injection"]
        outcome[kept] = (fwd.tracker.to_commit(), counts, len(lines), producer.out)
    (points, counts, lines, out), (bare_points, bare_counts, _, bare_out) = (
        outcome[True],
        outcome[False],
    )
    assert lines and sum(counts.values()) == lines
    assert bare_counts == counts and bare_out == out and bare_points == points
    assert points == {("src", 0): 0 if fails else 63}


@pytest.mark.parametrize(
    "fault",
    [
        {"type": "reorder", "window": 2, "max_wait": "1h"},  # a full window, released in place
        {"type": "delay", "delay": "1h", "max_held": 1},  # the size limit releases early
    ],
)
def test_a_record_released_in_a_later_batch_keeps_its_offset_uncommitted_until_it_lands(fault):
    """Offset 0 is held, then released while offset 1's batch is produced: the commit
    point must stay at 0 until it landed, and for good when its delivery failed."""
    for fails in (True, False):
        producer = Producer(fail_topic="src.shadow" if fails else None)
        fwd, _, _, _ = bridge([fault | {"fraction": 1.0}], producer=producer)
        fwd.tick(0.0)
        fwd.forward(messages([0]), 0.0)
        fwd.forward(messages([1]), 0.0)
        assert fwd.tracker.to_commit() == {("src", 0): 0}
        producer.poll()
        held = fwd.tracker.held_floor(("src", 0))
        want = 0 if fails else (held if held is not None else 2)
        assert fwd.tracker.to_commit() == {("src", 0): want}


def test_a_narrower_shadow_reports_every_record_of_every_partition():
    """Another bridge may write between a run's records where the key chooses partitions
    (any partition of a shadow narrower than its source): the order proves nothing."""
    raw = {"experiment": "x", "routes": [{"source": "src", "shadow": "src.shadow"}]}
    cfg = config_from_dict(raw, env={})
    ledger = Ledger("x", None, None, keep=True)
    journal = Journal(cfg, ledger, Metrics(CollectorRegistry(), cfg), 0.0)
    routes = {"src": RouteState(cfg.routes[0], 2, 0, None, source_parts=3)}
    producer = Producer()
    fwd = Forwarder(cfg, producer, OffsetTracker(), journal, routes)
    fwd.forward(messages(range(6), partition=0), 0.0)
    assert len(producer._queued) == 6
    assert all(rec[2] for rec in producer.out[0])  # each with its lineage header
    producer.poll()
    assert fwd.tracker.to_commit() == {("src", 0): 6}
