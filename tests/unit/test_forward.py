"""The forwarder hands each partition run's picks to the engine at once; what reaches the
shadow, and the ledger, must equal handling the records one at a time, whatever the
batch looks like (interleaved partitions, offset gaps, error events)."""

from __future__ import annotations

import json
import math
import random

import confluent_kafka as ck
import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge.forward import Forwarder, RouteState, _following
from streamchaos.bridge.offsets import OffsetTracker
from streamchaos.codec import AvroCodec, ParsedSchema
from streamchaos.config import config_from_dict
from streamchaos.faults.base import FaultContext
from streamchaos.ledger import Ledger
from streamchaos.metrics import Metrics
from streamchaos.record import Record

SCHEMA = ParsedSchema.of(
    {
        "type": "record",
        "name": "F",
        "fields": [{"name": "user", "type": "string"}, {"name": "amount", "type": "double"}],
    }
)
CODEC = AvroCodec(None, SCHEMA)
PIPELINES = {
    # a lone delay: held as produce calls (``RouteEngine.hold``), released early at its limit
    "delay": [{"type": "delay", "fraction": 0.3, "delay": "1s"}],
    "delay, small limit": [{"type": "delay", "fraction": 0.3, "delay": "1s", "max_held": 2}],
    "delay, uniform, small limit": [
        {"type": "delay", "fraction": 0.4, "distribution": "uniform", "max": 2, "max_held": 3}
    ],
    "corrupt": [{"type": "corrupt", "mode": "spike", "fields": ["amount"], "fraction": 0.3}],
    # one value-only stage: changed in place in the hot loop (``Engine.revalue``)
    "corrupt nan": [{"type": "corrupt", "mode": "nan", "fields": ["amount"], "fraction": 0.5}],
    "corrupt null (decoded)": [
        {"type": "corrupt", "mode": "null", "fields": ["amount"], "fraction": 0.3}
    ],
    "drift": [{"type": "drift", "fraction": 0.3, "features": {"amount": {"noise": 2}}}],
    "duplicate+drift": [
        {"type": "duplicate", "fraction": 0.2, "copies": 1},
        {"type": "drift", "fraction": 0.3, "features": {"amount": {"shift": 2}}},
    ],
    "stale_replay+key drop": [
        {"type": "stale_replay", "fraction": 0.3, "lag": 0.0, "mode": "inject"},
        {"type": "drop", "fraction": 0.2, "select": "key"},
    ],
}


class Producer:
    """Keeps the shadow records produced (ledger lines carry no headers); delivers on
    ``poll``, failing every record bound for ``fail_topic``."""

    def __init__(self, fail_topic: str | None = None, errors_only: bool = False) -> None:
        self.out: list[tuple[int, bytes, bytes]] = []
        self._queued: list[tuple] = []
        self.fail_topic = fail_topic
        self.errors_only = errors_only  # librdkafka's delivery.report.only.error

    def produce(  # as confluent-kafka takes them: positionally (the hot loop) or by name
        self,
        topic,
        value,
        key=None,
        partition=-1,
        callback=None,
        on_delivery=None,
        timestamp=0,
        headers=None,
    ):
        callback = callback or on_delivery
        if headers:
            self.out.append((partition, dict(headers)["streamchaos-origin"], value))
        self._queued.append((callback, topic, max(partition, 0), len(self.out)))

    def poll(self, timeout: float = 0) -> int:
        queued, self._queued = self._queued, []
        for callback, topic, partition, offset in queued:
            fails = topic == self.fail_topic
            err = ck.KafkaError(ck.KafkaError.MSG_SIZE_TOO_LARGE) if fails else None
            if fails or not self.errors_only:
                callback(err, ck.Message(topic=topic, partition=partition, offset=offset))
        return len(queued)


def forwarder(faults, seed, tmp_path):
    schema_file = tmp_path / "f.avsc"
    schema_file.write_text(json.dumps(SCHEMA.raw))
    route = {"source": "src", "shadow": "src.shadow", "format": "avro", "faults": faults}
    raw = {
        "experiment": "x",
        "seed": seed,
        "routes": [route | {"schema_file": str(schema_file)}],
    }
    cfg = config_from_dict(raw, env={})
    ctx = FaultContext(CODEC, "src", "src.shadow")
    routes = {"src": RouteState(cfg.routes[0], 2, cfg.seed, ctx)}
    producer, ledger = Producer(), Ledger("x", None, None, keep=True)
    metrics = Metrics(CollectorRegistry(), cfg)
    fwd = Forwarder(cfg, producer, OffsetTracker(), metrics, ledger, routes, 0.0)
    return fwd, producer, ledger


def consumed(rng):
    """A consumed stream: runs of two partitions, offset gaps, partition-EOF events."""
    msgs, nxt = [], {0: 0, 1: 0}
    for _ in range(rng.randrange(1, 40)):
        part = rng.choice([0, 1])
        for _ in range(rng.randrange(1, 6)):
            if rng.random() < 0.25:
                nxt[part] += rng.randrange(1, 3)  # compaction or a transaction marker
            value = CODEC.encode({"user": "u", "amount": float(nxt[part])}, SCHEMA, None)
            msgs.append(
                ck.Message(
                    topic="src",
                    partition=part,
                    offset=nxt[part],
                    key=b"k%d" % (nxt[part] % 5),
                    value=value,
                    timestamp=(1, 1000 + nxt[part]),
                )
            )
            nxt[part] += 1
            if rng.random() < 0.05:
                eof = ck.KafkaError(ck.KafkaError._PARTITION_EOF)
                msgs.append(ck.Message(topic="src", partition=part, offset=nxt[part], error=eof))
    return msgs


def by_partition(out):
    return {p: [(o, v) for q, o, v in out if q == p] for p in (0, 1)}


def injections(ledger):
    """Every injection line: where from, when, status, detail and the shadow partition
    (the fake's shadow offsets count across partitions, whose held records are released
    in another order; ``by_partition`` compares what landed where)."""
    lines = []
    for e in ledger.entries:
        if e["kind"] == "injection":
            if e["shadow"] is not None:
                e = e | {"shadow": e["shadow"] | {"offset": None}}
            lines.append(json.dumps(e, sort_keys=True))
    return sorted(lines)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_batched_forwarding_equals_one_record_at_a_time(name, tmp_path):
    faults = PIPELINES[name]
    injected = 0
    for trial in range(150):
        rng = random.Random(trial)
        msgs = consumed(rng)
        batches, i = [], 0
        while i < len(msgs):
            size = rng.randrange(1, 30)
            batches.append(msgs[i : i + size])
            i += size
        fwd, out, ledger = forwarder(faults, trial, tmp_path)
        ref, ref_out, ref_ledger = forwarder(faults, trial, tmp_path)
        engine = ref.routes["src"].engine
        for step, batch in enumerate(batches):
            now = step * 0.5
            fwd.tick(now)
            fwd.forward(batch, now)
            ref.tick(now)
            tracked = ref.tracker.new_batch()
            for msg in batch:
                if msg.error() is None:
                    ref.emit("src", engine.process(Record.from_message(msg), now), tracked, now)
            tracked.seal()
            out.poll()
            ref_out.poll()
        fwd.release(None, 99.0)
        ref.release(None, 99.0)
        out.poll()
        ref_out.poll()
        assert by_partition(out.out) == by_partition(ref_out.out), trial
        assert injections(ledger) == injections(ref_ledger), trial
        injected += len(injections(ledger))
    assert injected > 100  # the comparison is not between two empty ledgers


@pytest.mark.parametrize("fault", [{"type": "drop"}, {"type": "duplicate", "copies": 1}])
@pytest.mark.parametrize("ledger_fails", [False, True])
@pytest.mark.parametrize("records", [1, 5])
def test_ledger_topic_lines_hold_the_commit_point(fault, ledger_fails, records):
    """Ground truth before commits: an injection's source offset is committed only once its
    ledger line reached the ledger topic (DESIGN invariants 1 and 4); a line that finally
    fails keeps it uncommitted, like a shadow record that failed."""
    raw = {"experiment": "x", "routes": [{"source": "src", "shadow": "src.shadow"}]}
    raw["routes"][0]["faults"] = [fault | {"fraction": 1.0}]
    cfg = config_from_dict(raw, env={})
    producer, tracker = Producer(fail_topic="ledger.t" if ledger_fails else None), OffsetTracker()
    ledger = Ledger("x", None, "ledger.t", producer)
    routes = {"src": RouteState(cfg.routes[0], 1, cfg.seed)}
    completed = []
    tracker.on_complete = completed.append
    fwd = Forwarder(cfg, producer, tracker, Metrics(CollectorRegistry(), cfg), ledger, routes, 0.0)
    fwd.tick(0.0)  # the fault's episode starts
    msgs = [ck.Message(topic="src", partition=0, offset=o, value=b"v") for o in range(records)]
    fwd.forward(msgs, 0.0)
    producer.poll()  # shadow records land: their ledger lines are written, not yet sent
    assert tracker.to_commit() == {("src", 0): 0}
    lines = [json.loads(value)["kind"] for value, _ in ledger.outbox]
    assert sorted(lines) == ["episode_start"] + ["injection"] * records
    ledger.send()
    producer.poll()  # the ledger lines' delivery reports
    assert tracker.to_commit() == {("src", 0): 0 if ledger_fails else records}
    assert tracker.failed_outputs == (records if ledger_fails else 0)
    assert ledger.failed == (1 if ledger_fails else 0)  # the episode line
    # the bridge counts them as the route's produce errors when the batch completes
    assert sum(b.line_failures.get("src", 0) for b in completed) == (records if ledger_fails else 0)


@pytest.mark.parametrize("ends", ["on its schedule", "at shutdown"])
def test_counters_and_episode_tallies_agree_with_the_ledger(ends):
    """Injections are counted once per loop turn (``settle``); an episode's end must still
    carry every injection the ledger has, and so must the Prometheus counter."""
    raw = {"experiment": "x", "routes": [{"source": "src", "shadow": "src.shadow"}]}
    fault = {"type": "duplicate", "copies": 1, "fraction": 1.0}
    raw["routes"][0]["faults"] = [fault | {"schedule": {"start": 0, "duration": 10}}]
    cfg = config_from_dict(raw, env={})
    producer, ledger, registry = Producer(), Ledger("x", None, None, keep=True), CollectorRegistry()
    routes = {"src": RouteState(cfg.routes[0], 1, cfg.seed)}
    fwd = Forwarder(cfg, producer, OffsetTracker(), Metrics(registry, cfg), ledger, routes, 0.0)
    fwd.tick(0.0)
    fwd.forward([ck.Message(topic="src", partition=0, offset=o, value=b"v") for o in range(7)], 1)
    producer.poll()  # delivery reports: the ledger lines, counted but not yet settled
    if ends == "on its schedule":
        fwd.tick(11.0)
    else:
        fwd.close_episodes(5.0)
    [end] = [e for e in ledger.entries if e["kind"] == "episode_end"]
    injected = sum(e["kind"] == "injection" for e in ledger.entries)
    labels = {"experiment": "x", "route": "src", "fault": "duplicate", "type": "duplicate"}
    assert end["detail"]["injected"] == injected == 7
    assert registry.get_sample_value("streamchaos_injections_total", labels) == 7


@pytest.mark.parametrize("ledger_kept", [True, False])
@pytest.mark.parametrize("fails", [False, True])
def test_values_changed_in_place_are_ledgered_counted_and_committed_once_landed(
    ledger_kept, fails, tmp_path
):
    """A lone value-only fault's records are produced by the hot loop with new values
    (``revalue``): each still gets its ledger line with the shadow coordinates (``failed``
    when it did not land), its counter and episode tally (with or without a ledger), and
    its source offset is committed only once it landed."""
    fault = {"type": "corrupt", "mode": "nan", "fields": ["amount"], "fraction": 1.0}
    fwd, out, ledger = forwarder([fault | {"schedule": {"start": 0, "duration": 10}}], 1, tmp_path)
    fwd.producer = out = Producer(fail_topic="src.shadow" if fails else None)
    if not ledger_kept:
        fwd.ledger = ledger = Ledger("x", None, None)
    registry = CollectorRegistry()
    fwd.metrics = Metrics(registry, fwd.cfg)
    fwd._tallies.clear()
    fwd.tick(0.0)
    msgs = consumed(random.Random(3))
    fwd.forward(msgs, 1.0)
    out.poll()
    fwd.tick(11.0)  # the episode ends, with its tally
    sent = [m for m in msgs if m.error() is None]
    assert [v for _, _, v in out.out] == [
        CODEC.encode(CODEC.decode(m.value()).value | {"amount": math.nan}, SCHEMA, None)
        for m in sent
    ]
    labels = {"experiment": "x", "route": "src", "fault": "corrupt", "type": "corrupt"}
    assert registry.get_sample_value("streamchaos_injections_total", labels) == len(sent)
    assert fwd.routes["src"].engine.stages[0].injected == len(sent)
    lows = {p: min(m.offset() for m in sent if m.partition() == p) for p in (0, 1)}
    highs = {p: max(m.offset() for m in sent if m.partition() == p) + 1 for p in (0, 1)}
    assert fwd.tracker.to_commit() == {("src", p): lows[p] if fails else highs[p] for p in (0, 1)}
    if not ledger_kept:
        assert ledger.entries is None
        return
    lines = [e for e in ledger.entries if e["kind"] == "injection"]
    assert [(e["source"]["partition"], e["source"]["offset"]) for e in lines] == [
        (m.partition(), m.offset()) for m in sent
    ]
    assert {e["status"] for e in lines} == {"failed" if fails else "delivered"}
    assert all((e["shadow"] is None) == fails for e in lines)
    assert [e["detail"] for e in lines] == [
        {"mode": "nan", "fields": {"amount": {"old": float(m.offset()), "new": "nan"}}}
        for m in sent
    ]


@pytest.mark.parametrize("name", ["delay", "corrupt", "corrupt nan", "duplicate+drift"])
@pytest.mark.parametrize("fails", [False, True])
def test_without_a_ledger_only_failures_are_reported_and_nothing_else_is_lost(
    name, fails, tmp_path
):
    """No ledger: the bridge asks the client for failure reports only. Injections are
    counted without waiting for reports that never come (as many as a run with a ledger
    writes lines), and offsets are committable only once a flush emptied the producer
    (``all_landed``): then exactly as far as with a report per record."""
    faults = [f | {"schedule": {"start": 0, "duration": 10}} for f in PIPELINES[name]]
    fail_topic = "src.shadow" if fails else None
    runs = {}
    for kept in (True, False):
        fwd, _, _ = forwarder(faults, 5, tmp_path)
        fwd.producer = out = Producer(fail_topic, errors_only=not kept)
        if not kept:
            fwd.ledger = Ledger("x", None, None)
        registry = CollectorRegistry()
        fwd.metrics = Metrics(registry, fwd.cfg)
        fwd._tallies.clear()
        fwd.tick(0.0)
        msgs = consumed(random.Random(11))
        for i in range(0, len(msgs), 7):
            fwd.forward(msgs[i : i + 7], 1.0)
            out.poll()
        fwd.tick(5.0)  # the delays are over: released
        out.poll()
        before = fwd.tracker.to_commit()
        fwd.tracker.all_landed()  # what the bridge does once a flush left nothing in flight
        fwd.tick(11.0)  # the episodes end, with their tallies
        counts = {
            s.labels["fault"]: s.value
            for m in registry.collect()
            if m.name == "streamchaos_injections"
            for s in m.samples
            if s.name.endswith("_total")
        }
        runs[kept] = (before, fwd.tracker.to_commit(), counts, fwd.ledger.entries, out.out)
    (_, points, counts, entries, out), (before, bare_points, bare_counts, _, bare_out) = (
        runs[True],
        runs[False],
    )
    lines = [e for e in entries if e["kind"] == "injection"]
    assert lines and sum(counts.values()) == len(lines)
    assert bare_counts == counts
    assert bare_out == out
    assert bare_points == points
    if not fails:  # nothing is committable before the flush (failures block it anyway)
        assert all(before.get(tp, 0) < point for tp, point in points.items())


def test_the_hot_loop_looks_up_the_next_pick_or_asks_again_at_the_end():
    """``_following``: the loop compares each offset with one number, the next pick's
    offset or, when no pick lies before it, where the engine must be asked again."""
    ahead = [3, 9, 15]
    assert [_following(ahead, o, 12) for o in (0, 3, 4, 9, 10)] == [3, 3, 9, 9, 12]
    assert _following(ahead, 16, 40) == 40 and _following([], 0, 5) == 5
