"""The ledger file: every line is the JSON of its entry, whichever way it was built."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamchaos.ledger import Ledger, coords
from streamchaos.record import Injection, Record

SOURCE = Record('pay"ments\\ü', 2, 1234567, b"k", b"v")
CASES = [
    ("delivered", coords("pay.shadow", 2, 99), {"delay_ms": 20.0}),
    ("failed", None, {"mode": "nan", "fields": {"amount": {"old": 1.5, "new": "nan"}}}),
    ("dropped", None, {}),
    ("delivered", coords('sh"ad\nöw', 0, 0), {"new": math.nan, "at": dt.datetime(2026, 1, 2)}),
]


def _expected(route: str, inj: Injection, shadow: object, status: str, at: int) -> str:
    entry = {
        "experiment": "exp-1",
        "route": route,
        "fault": inj.fault,
        "type": inj.type,
        "kind": "injection",
        "effect": inj.effect,
        "status": status,
        "source": coords(SOURCE.topic, SOURCE.partition, SOURCE.offset),
        "shadow": shadow,
        "at": at,
        "detail": inj.detail,
    }
    return json.dumps(entry, separators=(",", ":"), default=str)


def test_injection_lines_are_the_json_of_their_entries(tmp_path: Path) -> None:
    """Lines built from cached parts must read back as ``json.dumps`` of the entry does,
    names JSON has to escape, NaN and values only ``str`` can write included (orjson
    writes non-ASCII raw where ``json`` escapes it: the same value); each part is cached
    per route, fault, type, effect and status, so lines that differ in any one of them
    come out right on the second round too."""
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger("exp-1", path, None)
    expected = []
    faults = [  # one name with two effects and with two types: the key needs all three
        ('slow "api"', "delay", "modify"),
        ("dup", "duplicate", "extra"),
        ("dup", "duplicate", "modify"),
        ("dup", "corrupt", "modify"),
    ]
    for n, (status, shadow, detail) in enumerate(CASES * 2):
        for route in (SOURCE.topic, "other"):
            for fault, type_, effect in faults:
                inj = Injection(fault, type_, "drop" if status == "dropped" else effect, detail)
                ledger.injection(route, inj, SOURCE[:3], shadow, status, 1_700_000_000_000 + n)
                expected.append(_expected(route, inj, shadow, status, 1_700_000_000_000 + n))
    ledger.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [_canonical(line) for line in lines] == [_canonical(line) for line in expected]
    assert all(line.isascii() or "ü" in line for line in lines)


def _canonical(line: str) -> str:
    return json.dumps(json.loads(line), separators=(",", ":"))


def test_both_ways_of_writing_an_injection_give_the_same_file(tmp_path: Path) -> None:
    """With a kept list (the Python API) lines come from the entry dicts; without, from
    cached parts: the files must be identical."""
    files = []
    for keep in (False, True):
        path = tmp_path / f"keep-{keep}.jsonl"
        ledger = Ledger("exp-1", path, None, keep=keep)
        for n, (status, shadow, detail) in enumerate(CASES * 2):
            inj = Injection("f", "delay", "modify", detail)
            ledger.injection(SOURCE.topic, inj, SOURCE[:3], shadow, status, n)
        ledger.close()
        files.append(path.read_text(encoding="utf-8"))
    assert files[0] == files[1]
    assert files[0].count("\n") == 2 * len(CASES)


def test_kept_entries_and_file_lines_agree(tmp_path: Path) -> None:
    """With a kept list (the Python API) the entries are dicts; the file holds their JSON."""
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger("exp-1", path, None, keep=True)
    inj = Injection("corrupt", "corrupt", "modify", {"mode": "null"})
    ledger.injection("t", inj, SOURCE[:3], coords("t.shadow", 2, 5), "delivered", 17)
    ledger.event("t", "corrupt", "corrupt", "episode_start", 16, {"fraction": 0.1})
    ledger.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == ledger.entries
    assert [e["kind"] for e in lines] == ["injection", "episode_start"]


@pytest.mark.parametrize("keep", [False, True])
def test_without_a_sink_only_a_kept_list_holds_entries(keep: bool) -> None:
    """No file and no topic: the ledger is active only to keep entries (the Python API)."""
    ledger = Ledger("exp-1", None, None, keep=keep)
    inj = Injection("drop", "drop", "drop", {})
    assert ledger.injection("t", inj, SOURCE[:3], None, "dropped", 1) is False  # no topic line
    assert ledger.active is keep
    assert (ledger.entries is not None and len(ledger.entries) == 1) is keep


class QueueFull:
    """A producer whose queue is full for the first ``full`` calls; it refuses ``refuse``."""

    def __init__(self, full: int = 0, refuse: bytes | None = None) -> None:
        self.full, self.refuse = full, refuse
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.polls = 0

    def produce(self, topic, value, key, on_delivery=None):
        if self.full:
            self.full -= 1
            raise BufferError("queue full")
        if value == self.refuse:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.sent.append((topic, value, key))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        return 0


def test_lines_for_the_topic_wait_for_send_and_a_full_queue(tmp_path: Path) -> None:
    """Lines for the topic are produced by ``send`` (the bridge's loop), not when written
    (often from a delivery callback, where waiting for room is not possible); a full queue
    is waited out with polls, and every line arrives once, in order, keyed by experiment."""
    producer = QueueFull(full=3)
    ledger = Ledger("exp-1", tmp_path / "l.jsonl", "ledger.t", producer)
    inj = Injection("delay", "delay", "modify", {"delay_ms": 5})
    assert ledger.injection("t", inj, SOURCE[:3], None, "delivered", 1) is True
    ledger.event("t", "delay", "delay", "episode_start", 0, {})
    assert producer.sent == []
    assert ledger.send() == 2
    assert producer.polls == 3
    ledger.close()
    assert [v.decode() for _, v, _ in producer.sent] == (tmp_path / "l.jsonl").read_text(
        encoding="utf-8"
    ).splitlines()
    assert {(t, k) for t, _, k in producer.sent} == {("ledger.t", b"exp-1")}
    assert ledger.outbox == []


def test_a_line_the_client_refuses_is_a_failed_delivery_for_its_callback() -> None:
    reports = []
    ledger = Ledger("exp-1", None, "ledger.t", QueueFull())
    inj = Injection("drop", "drop", "drop", {"note": "x" * 50})
    ledger.injection("t", inj, SOURCE[:3], None, "dropped", 1, lambda e, m: reports.append((e, m)))
    ledger.producer.refuse = ledger.outbox[0][0]
    ledger.send()
    [(err, msg)] = reports
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert msg.topic() == "ledger.t"


def test_without_a_topic_nothing_waits_in_the_outbox(tmp_path: Path) -> None:
    ledger = Ledger("exp-1", tmp_path / "l.jsonl", None)
    inj = Injection("drop", "drop", "drop", {})
    assert ledger.injection("t", inj, SOURCE[:3], None, "dropped", 1, print) is False
    assert ledger.outbox == [] and ledger.send() == 0


@pytest.mark.parametrize("command", ["audit", "score"])
def test_audit_and_score_take_one_ledger_source(command, capsys, monkeypatch) -> None:
    """``--ledger FILE`` or ``--ledger-topic T``: exactly one (exit 2 and the options named
    otherwise); a topic needs a broker, named when missing."""
    from streamchaos.cli import main

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    extra = ["--source", "s", "--shadow", "s.shadow"] if command == "audit" else ["--alerts", "a"]
    assert main([command, *extra]) == 2
    assert "--ledger" in capsys.readouterr().err
    assert main([command, *extra, "--ledger", "l.jsonl", "--ledger-topic", "t"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert main([command, *extra, "--ledger-topic", "t"]) == 2
    assert "--bootstrap-servers" in capsys.readouterr().err


class Flushing:
    """``flush`` serves the queued delivery reports (whose callbacks may write ledger
    lines) and reports what is left; ``stuck`` records are never delivered."""

    def __init__(self, stuck: int = 0) -> None:
        self.queued: list[tuple[str, bytes, Any]] = []
        self.sent: list[str] = []
        self.stuck = stuck

    def produce(self, topic, value, key, on_delivery=None):
        self.queued.append((topic, value, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        queued, self.queued = self.queued, []
        for topic, _value, callback in queued:
            self.sent.append(topic)
            callback(None, None)
        return self.stuck


def _bridge_with(producer: Flushing, ledger: Ledger) -> Any:
    from streamchaos.bridge import Bridge
    from streamchaos.config import config_from_dict

    raw = {"experiment": "x", "routes": [{"source": "s", "shadow": "s.shadow"}]}
    raw["bridge"] = {"shutdown_timeout": 0.5}
    bridge = Bridge(config_from_dict(raw, env={}))
    bridge._producer, bridge.ledger = producer, ledger
    return bridge


def test_flush_sends_what_its_delivery_reports_write() -> None:
    """Shutdown and revocation flush until nothing is in flight: a delivery report served
    by the flush writes a ledger line, which must be sent and flushed too."""
    producer = Flushing()
    ledger = Ledger("x", None, "ledger.t", producer)
    inj = Injection("dup", "duplicate", "extra", {})

    def shadow_landed(err: Any, msg: Any) -> None:  # what the forwarder does on delivery
        ledger.injection("s", inj, SOURCE[:3], None, "delivered", 1)

    producer.produce("s.shadow", b"v", b"k", on_delivery=shadow_landed)
    assert _bridge_with(producer, ledger)._flush() == 0
    assert producer.sent == ["s.shadow", "ledger.t"]
    assert ledger.outbox == []


def test_flush_gives_up_at_its_deadline_and_counts_what_is_left() -> None:
    """Records that never land, or delivery reports that keep writing lines: ``_flush``
    stops at ``shutdown_timeout`` and reports what is left (in flight, or still waiting)."""
    producer = Flushing(stuck=3)
    ledger = Ledger("x", None, "ledger.t", producer)
    ledger.event("s", "dup", "duplicate", "episode_start", 0, {})
    assert _bridge_with(producer, ledger)._flush() == 3

    endless = Flushing()
    ledger = Ledger("x", None, "ledger.t", endless)
    inj = Injection("dup", "duplicate", "extra", {})

    def another(err: Any, msg: Any) -> None:  # every line's report writes one more
        ledger.injection("s", inj, SOURCE[:3], None, "delivered", 1, another)

    ledger.injection("s", inj, SOURCE[:3], None, "delivered", 1, another)
    assert _bridge_with(endless, ledger)._flush() == 1
    assert len(endless.sent) > 1


def test_deferred_file_lines_wait_for_their_transaction(tmp_path: Path) -> None:
    """Under exactly-once the file gets a transaction's lines once it committed, and never
    those of one that aborted (its records are read again)."""
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger("e", path, None)
    ledger.defer()
    ledger.event("r", "f", "drop", "episode_start", 1, {})
    ledger.flush()
    assert path.read_text() == ""
    ledger.commit_lines()
    assert [json.loads(line)["kind"] for line in path.read_text().splitlines()] == ["episode_start"]
    ledger.event("r", "f", "drop", "episode_end", 2, {})
    ledger.discard_lines()
    ledger.commit_lines()
    ledger.close()
    assert len(path.read_text().splitlines()) == 1
