"""feedback: labels censored or relabelled by the joined record (the key table's bounds,
the actions, the config's refusals)."""

from __future__ import annotations

import json
import random

import pytest
from confluent_kafka import Message

from streamchaos.codec import JsonCodec
from streamchaos.config import config_from_dict
from streamchaos.errors import ConfigError
from streamchaos.faults.base import FaultContext
from streamchaos.faults.feedback import Feedback, FeedbackConfig
from streamchaos.faults.picks import picks_of
from streamchaos.joins import KeyTable
from streamchaos.predicates import MISSING, Predicate
from streamchaos.record import Record

CODEC = JsonCodec()


def prediction(key: bytes, decision: str, offset: int, ts: int = 1000) -> Message:
    value = json.dumps({"decision": decision}).encode()
    return Message(
        topic="preds", partition=1, offset=offset, key=key, value=value, timestamp=(1, ts)
    )


def fault_with(cfg: FeedbackConfig, predictions: list[Message]) -> Feedback:
    ctx = FaultContext(CODEC, "labels", "labels.shadow")
    misses: list[str] = []
    ctx.join_missed = misses.append
    ctx.joined(cfg)  # as the stage does
    for table in ctx.joins.taps("preds"):
        table.observe(predictions, 0, len(predictions), CODEC)
    fault = Feedback(cfg, random.Random(1))
    fault.ctx = ctx
    fault.misses = misses  # type: ignore[attr-defined]
    return fault


def label(key: bytes, fraud: bool, ts: int = 2000) -> Record:
    return Record("labels", 0, 5, key, json.dumps({"fraud": fraud}).encode(), (), ts)


def test_only_labels_whose_prediction_matches_are_dropped_and_misses_are_counted():
    cfg = FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"})
    preds = [prediction(b"a", "decline", 10), prediction(b"b", "approve", 11)]
    fault = fault_with(cfg, preds)
    labels = [label(b"a", True), label(b"b", False), label(b"zz", True)]
    actions = fault.act(picks_of(labels, codec=CODEC), 0.0)
    effects = [getattr(a, "injection", None) for a in actions]
    assert effects[0].effect == "drop"
    assert effects[0].detail["joined"] == {"topic": "preds", "partition": 1, "offset": 10}
    assert effects[1] is None and effects[2] is None
    assert fault.misses == ["feedback"]


def test_the_latest_prediction_of_a_key_decides():
    cfg = FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"})
    fault = fault_with(cfg, [prediction(b"a", "decline", 1), prediction(b"a", "approve", 2)])
    [action] = fault.act(picks_of([label(b"a", True)], codec=CODEC), 0.0)
    assert getattr(action, "injection", None) is None


def test_relabel_sets_the_label_field():
    cfg = FeedbackConfig(
        join={"route": "preds"},
        when={"decision": "decline"},
        action="relabel",
        label_field="fraud",
        value=False,
    )
    fault = fault_with(cfg, [prediction(b"a", "decline", 3)])
    [action] = fault.act(picks_of([label(b"a", True)], codec=CODEC), 0.0)
    assert json.loads(action.value) == {"fraud": False}
    assert action.injection.detail["old"] is True and action.injection.detail["new"] is False


def test_window_and_max_keys_bound_the_table():
    table = KeyTable(Predicate.of({"decision": "decline"}), window_ms=5_000, max_keys=2)
    preds = [prediction(b"a", "decline", 1, ts=1_000), prediction(b"b", "decline", 2, ts=1_000)]
    table.observe(preds, 0, 2, CODEC)
    assert table.get(b"a", 6_000) is not None  # 5 s old: inside the window
    assert table.get(b"a", 6_001) is None  # older than the window
    assert table.get(b"a", 0) is not None  # a label without a timestamp: no window test
    table.observe([prediction(b"c", "approve", 3)], 0, 1, CODEC)
    assert len(table) == 2 and table.evicted == 1 and table.get(b"a", 1_000) is None
    table.observe(
        [Message(topic="preds", partition=0, offset=4, key=b"d", value=b"{bad")], 0, 1, CODEC
    )
    assert table.unreadable == 1 and table.get(b"d", 0).value is MISSING


def experiment(fault: dict, routes: list[str] = ("labels", "preds")) -> dict:
    return {
        "experiment": "e",
        "routes": [
            {
                "source": r,
                "shadow": f"{r}.shadow",
                "format": "json",
                "faults": [fault] if i == 0 else [],
            }
            for i, r in enumerate(routes)
        ],
    }


@pytest.mark.parametrize(
    ("fault", "routes", "message"),
    [
        ({"join": {"route": "nope"}}, ("labels", "preds"), "join.route: 'nope' is not a route"),
        ({"join": {"route": "labels"}}, ("labels", "preds"), "must be another route"),
        ({"join": {"route": "preds"}, "action": "relabel"}, ("labels", "preds"), "label_field"),
        ({"join": {"route": "preds"}, "label_field": "x"}, ("labels", "preds"), "only with action"),
        ({"join": {"route": "preds"}, "when": {}}, ("labels", "preds"), "when"),
        ({"join": {"route": "preds"}}, ("^labels.*", "preds"), "not available on a pattern"),
    ],
)
def test_config_refusals_name_the_field(fault, routes, message):
    raw = {"type": "feedback", "when": {"decision": "decline"}, **fault}
    cfg = experiment(raw, list(routes))
    if routes[0].startswith("^"):
        cfg["routes"][0]["shadow"] = "{topic}.shadow"
    with pytest.raises(ConfigError, match=message):
        config_from_dict(cfg, env={})


def test_delay_holds_the_matching_labels_for_the_delay():
    cfg = FeedbackConfig(
        join={"route": "preds"}, when={"decision": "decline"}, action="delay", delay="3d"
    )
    fault = fault_with(cfg, [prediction(b"a", "decline", 4), prediction(b"b", "approve", 5)])
    actions = fault.act(picks_of([label(b"a", True), label(b"b", False)], codec=CODEC), 10.0)
    assert [repr(a) for a in actions] == ["HOLD", "KEEP"]
    assert fault.due(10.0 + 3 * 86400 - 1) == []
    [released] = fault.due(10.0 + 3 * 86400)
    assert released.injection.detail["delay_ms"] == 3 * 86400 * 1000
    assert released.injection.detail["joined"]["offset"] == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"action": "delay"}, "delay: required with action: delay"),
        ({"action": "drop", "delay": "1s"}, "delay: required with action: delay, and only"),
        ({"action": "delay", "delay": "1s", "value": 1}, "only with action: relabel"),
    ],
)
def test_action_settings_go_together(settings, message):
    with pytest.raises(ValueError, match=message):
        FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"}, **settings)


def test_a_removed_or_replaced_fault_stops_feeding_its_table():
    from streamchaos.engine import Pipeline

    ctx = FaultContext(CODEC, "labels", "labels.shadow")
    first = FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"})
    pipeline = Pipeline("labels", [first], 7, ctx)
    [old] = ctx.joins.taps("preds")
    pipeline.remove("feedback", 0.0)
    assert ctx.joins.taps("preds") == []
    pipeline.add(FeedbackConfig(join={"route": "preds"}, when={"decision": "approve"}), 0.0)
    [new] = ctx.joins.taps("preds")
    assert new is not old and new.reader.test({"decision": "approve"}, {}, None, 0) is True


def test_an_unreadable_prediction_is_reported_as_undecodable():
    table = KeyTable(Predicate.of({"decision": "decline"}), window_ms=None, max_keys=5)
    reasons = []
    bad = Message(topic="preds", partition=0, offset=1, key=b"a", value=b"{not json")
    table.observe([bad], 0, 1, CODEC, reasons.append)
    assert len(reasons) == 1 and table.unreadable == 1


def test_an_unreadable_prediction_counts_as_a_miss():
    cfg = FeedbackConfig(join={"route": "preds"}, when={"decision": "decline"})
    bad = Message(topic="preds", partition=0, offset=1, key=b"a", value=b"{not json")
    fault = fault_with(cfg, [bad])
    [action] = fault.act(picks_of([label(b"a", True)], codec=CODEC), 0.0)
    assert repr(action) == "KEEP" and fault.misses == ["feedback"]


def test_a_join_that_reads_values_needs_a_decodable_joined_route():
    raw = experiment({"type": "feedback", "join": {"route": "preds"}, "when": {"decision": "x"}})
    raw["routes"][1]["format"] = "bytes"
    with pytest.raises(ConfigError, match=r"join.route: feedback reads the values of 'preds'"):
        config_from_dict(raw, env={})
    raw["routes"][0]["faults"][0]["when"] = {"key": {"regex": "^tx"}}  # the key needs no value
    config_from_dict(raw, env={})
    leak = {"type": "leak", "feature": "s", "label_from": {"route": "nope", "field": "y"}}
    with pytest.raises(ConfigError, match=r"faults\[0\]\.label_from\.route: 'nope' is not"):
        config_from_dict(experiment(leak), env={})


def test_the_key_tables_size_and_evictions_are_exported():
    from prometheus_client import CollectorRegistry

    from streamchaos.bridge.journal import Journal
    from streamchaos.engine import Pipeline
    from streamchaos.ledger import Ledger
    from streamchaos.metrics import Metrics

    raw = {"experiment": "e", "routes": [
        {"source": "preds", "shadow": "preds.shadow", "format": "json"},
        {"source": "labels", "shadow": "labels.shadow", "format": "json", "faults": [
            {"type": "feedback", "join": {"route": "preds", "max_keys": 3},
             "when": {"decision": "decline"}}]}]}  # fmt: skip
    cfg = config_from_dict(raw, env={})
    registry = CollectorRegistry()
    journal = Journal(cfg, Ledger("e", None, None), Metrics(registry, cfg), 0.0)
    ctx = FaultContext(CODEC, "labels", "labels.shadow")
    pipeline = Pipeline("labels", cfg.routes[1].faults, 7, ctx)
    [table] = ctx.joins.taps("preds")
    labels = {"route": "labels", "fault": "feedback"}
    for keys in (2, 5, 7):
        preds = [prediction(b"k%d" % i, "decline", i) for i in range(keys)]
        table.observe(preds, 0, keys, CODEC)
        journal.gauges("labels", pipeline)
        assert registry.get_sample_value("streamchaos_join_keys", labels) == min(keys, 3)
    # k0..k1, then k0..k4 (k0 and k1 pushed out), then k0..k6: each write past 3 keys
    # pushes the least recently written out, 7 more
    assert registry.get_sample_value("streamchaos_join_evictions_total", labels) == 9
