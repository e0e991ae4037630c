"""Faults changed on a running bridge: made between batches, ledgered, nothing held lost;
and ``streamchaos ctl`` over the real HTTP control API."""

from __future__ import annotations

import json
import socket
import threading

import confluent_kafka as ck
import pytest
from prometheus_client import CollectorRegistry

from streamchaos.bridge.checkpoint import OffsetTracker
from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.live import LivePlan
from streamchaos.bridge.setup import RouteState, fault_context
from streamchaos.cli import main
from streamchaos.config import config_from_dict
from streamchaos.config.plan import parse_fault
from streamchaos.errors import ConfigError
from streamchaos.httpserver import ControlServer
from streamchaos.ledger import Ledger
from streamchaos.metrics import Metrics
from tests.fakes import Producer

TOKEN = "t0ken"
HOLD = {"type": "delay", "name": "hold", "fraction": 1.0, "delay": "60s"}


def live_bridge(faults=()):
    raw = {
        "experiment": "x",
        "routes": [{"source": "src", "shadow": "src.shadow", "format": "json", "faults": faults}],
    }
    cfg = config_from_dict(raw, env={})
    producer, ledger = Producer(), Ledger("x", None, None, keep=True)
    metrics = Metrics(CollectorRegistry(), cfg)
    journal = Journal(cfg, ledger, metrics, 0.0)
    route = cfg.routes[0]
    routes = {"src": RouteState(route, 1, cfg.seed, fault_context(route, None, metrics))}
    if routes["src"].pipeline is not None:
        journal.watch("src", routes["src"].pipeline)
    tracker = OffsetTracker()
    fwd = Forwarder(cfg, producer, tracker, journal, routes)
    tracker.held_floor = fwd.held_floor
    return LivePlan(cfg, cfg, routes, fwd, journal, lambda: False), fwd, producer, ledger


def messages(offsets):
    return [
        ck.Message(topic="src", partition=0, offset=o, value=b'{"amount": %d}' % o, key=b"k")
        for o in offsets
    ]


def shadow_values(producer):
    producer.poll()
    return [json.loads(rec[1])["amount"] for rec in producer.out.get(0, [])]


def test_a_delay_added_live_holds_and_its_removal_releases_everything():
    live, fwd, producer, ledger = live_bridge()
    assert fwd.pipelines == []
    answer = live.add(1.0, "src", parse_fault(HOLD), "127.0.0.1")
    assert answer["action"] == "add" and fwd.pipelines
    fwd.tick(1.0)
    fwd.forward(messages(range(10)), 1.5)
    assert shadow_values(producer) == []  # all held
    assert live.snapshot(2.0)["routes"][0]["faults"][0]["held"] == 10
    answer = live.remove(2.0, "src", "hold", "127.0.0.1")
    assert answer["released"] == 10
    fwd.forward(messages(range(10, 15)), 2.5)
    assert shadow_values(producer) == list(range(15))  # nothing lost, order kept
    lines = ledger.entries
    changes = [e for e in lines if e["kind"] == "plan_change"]
    assert [c["detail"]["action"] for c in changes] == ["add", "remove"]
    assert changes[0]["detail"]["config"]["delay"] == 60.0
    assert changes[0]["detail"]["plan_hash"] != changes[1]["detail"]["plan_hash"]
    end = next(e for e in lines if e["kind"] == "episode_end")
    assert end["detail"]["reason"] == "removed" and end["at"] == 2000
    held = [e for e in lines if e["kind"] == "injection"]
    assert len(held) == 10 and all(e["detail"]["released_early"] for e in held)


def test_an_added_fault_counts_its_schedule_from_the_change():
    live, fwd, _, _ = live_bridge()
    later = {**HOLD, "schedule": {"start": "5s", "duration": "10s"}}
    live.add(100.0, "src", parse_fault(later), "c")
    stage = fwd.pipelines[0][1].stages[0]
    fwd.tick(104.0)
    assert stage.intensity == 0
    fwd.tick(105.5)
    assert stage.intensity == 1
    fwd.tick(115.5)
    assert stage.intensity == 0


def test_a_replacement_keeps_its_place_and_an_invalid_change_changes_nothing():
    first = {"type": "corrupt", "name": "nan", "fields": ["amount"], "fraction": 1.0}
    live, fwd, _, _ = live_bridge([first, HOLD])
    before = live.cfg
    with pytest.raises(ConfigError, match=r"faults\[2\]\.name: 'hold' is already"):
        live.add(1.0, "src", parse_fault(HOLD), "c")
    assert live.cfg is before and [s.name for s in fwd.pipelines[0][1].stages] == ["nan", "hold"]
    live.replace(1.0, "src", "nan", parse_fault({**first, "fraction": 0.0}), "c")
    assert [s.name for s in fwd.pipelines[0][1].stages] == ["nan", "hold"]
    assert live.cfg.routes[0].faults[0].fraction == 0.0


@pytest.fixture
def served():
    """A live plan behind a real control server, its changes made by a loop thread."""
    live = live_bridge()[0]
    server = ControlServer(CollectorRegistry(), "127.0.0.1", 0, TOKEN)
    live.serve_on(server)
    server.start()
    stop = threading.Event()

    def loop():
        while not stop.wait(0.005):
            if live.queue:
                live.serve(1.0)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield live, f"http://127.0.0.1:{server.port}"
    stop.set()
    thread.join(5)
    server.stop()


def ctl(url, *args, token=TOKEN):
    return main(["ctl", "--url", url, *(["--token", token] if token else []), *args])


def test_ctl_changes_the_plan_over_http(served, tmp_path, capsys):
    live, url = served
    fault = tmp_path / "f.yaml"
    fault.write_text("type: delay\nname: hold\nfraction: 0.5\ndelay: 2s\n")
    assert ctl(url, "add", "-r", "src", "-f", str(fault)) == 0
    assert "hold" in capsys.readouterr().out
    assert ctl(url, "list") == 0
    out = capsys.readouterr().out
    assert "src -> src.shadow" in out and "hold" in out and "delay" in out
    fault.write_text("type: delay\nfraction: 0.25\ndelay: 2s\n")  # set keeps the name
    assert ctl(url, "set", "-r", "src", "-n", "hold", "-f", str(fault)) == 0
    assert live.cfg.routes[0].faults[0].label == "hold"
    assert live.cfg.routes[0].faults[0].fraction == 0.25
    assert ctl(url, "rm", "-r", "src", "-n", "hold") == 0
    assert live.cfg.routes[0].faults == []


def test_ctl_refusals_name_the_problem_and_change_nothing(served, tmp_path, capsys):
    live, url = served
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: delay\nfraction: 2\n")
    assert ctl(url, "add", "-r", "src", "-f", str(bad)) == 2
    assert "fraction" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("type: delay\n")
    assert ctl(url, "add", "-r", "nope", "-f", str(good)) == 2
    assert "no such route" in capsys.readouterr().err
    assert ctl(url, "add", "-r", "src", "-f", str(good), token=None) == 2
    assert "401" in capsys.readouterr().err
    assert ctl(url, "list", token="wrong") == 2
    assert "403" in capsys.readouterr().err
    assert ctl(url, "rm", "-r", "src", "-n", "delay") == 2
    assert live.cfg.routes[0].faults == []


def test_ctl_says_when_the_bridge_cannot_be_reached(capsys):
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert ctl(f"http://127.0.0.1:{port}", "list") == 1
    assert "cannot reach the bridge" in capsys.readouterr().err


def test_faults_added_late_follow_their_own_schedule_drift_and_outage_too():
    """A drift and an outage added an hour in: the drift shifts from then, the outage holds
    for its 5 s from then and lets go after (not at once, not an hour late)."""
    live, fwd, producer, ledger = live_bridge()
    shift = {"type": "drift", "name": "shift", "features": {"amount": {"shift": 100}}}
    stop = {"type": "outage", "name": "stop", "schedule": {"start": 0, "duration": "5s"}}
    live.add(3600.0, "src", parse_fault(shift), "c")
    live.add(3600.0, "src", parse_fault(stop), "c")
    fwd.tick(3600.0)
    fwd.forward(messages(range(3)), 3601.0)
    fwd.tick(3603.0)
    assert shadow_values(producer) == []  # held by the outage
    fwd.tick(3605.5)
    assert shadow_values(producer) == [100, 101, 102]  # drifted, then released
    lines = [e for e in ledger.entries if e["kind"] == "injection" and e["fault"] == "stop"]
    assert [e["detail"]["held_ms"] for e in lines] == [4500.0] * 3


def test_a_replacement_of_another_type_is_not_credited_with_what_its_predecessor_did():
    live, fwd, _, _ = live_bridge([HOLD])
    fwd.tick(1.0)
    fwd.forward(messages(range(10)), 1.5)
    drop = {"type": "drop", "name": "hold", "fraction": 0.0}
    assert live.replace(2.0, "src", "hold", parse_fault(drop), "c")["released"] == 10
    fwd.producer.poll()
    fwd.tick(2.5)
    [fault] = live.snapshot(3.0)["routes"][0]["faults"]
    assert fault["type"] == "drop" and fault["injected"] == 0


def test_a_change_the_loop_did_not_take_in_time_is_taken_back(monkeypatch):
    from streamchaos.bridge import live as live_module

    monkeypatch.setattr(live_module, "WAIT", 0.05)
    live = live_bridge()[0]
    with pytest.raises(live_module.Busy, match="did not take the change"):
        live._ask(lambda now: live.add(now, "src", parse_fault(HOLD), "c"))
    live.serve(1.0)  # the loop comes back: the refused change is not made
    assert live.cfg.routes[0].faults == []
    live.close()
    with pytest.raises(live_module.Busy, match="stopping"):
        live._ask(lambda now: None)


def test_an_unwritable_plan_file_stops_the_start_with_its_name(tmp_path):
    from streamchaos.bridge.live import restored

    blocker = tmp_path / "file"
    blocker.write_text("")
    raw = {
        "experiment": "x",
        "routes": [{"source": "src", "shadow": "src.shadow"}],
        "control": {"plan_file": str(blocker / "plan.json")},
    }
    with pytest.raises(ConfigError, match=r"control.plan_file .*plan.json: cannot write"):
        restored(config_from_dict(raw, env={}))


def test_the_server_answers_bad_requests_instead_of_hanging_up(served):
    import http.client

    _, url = served
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/routes/src/faults")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", "lots")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("PATCH", "/faults", headers={"Authorization": f"Bearer {TOKEN}"})
    answer = conn.getresponse()
    assert answer.status in (405, 501)  # http.server refuses unknown verbs itself
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("DELETE", "/faults", headers={"Authorization": f"Bearer {TOKEN}"})
    answer = conn.getresponse()
    assert answer.status == 405 and answer.getheader("Allow") == "GET"
