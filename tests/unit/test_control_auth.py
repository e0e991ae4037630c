"""The control port: state-changing requests need the bearer token when one is set, and a
port reachable from other hosts needs one."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from streamchaos.cli import main
from streamchaos.httpserver import ControlServer

TOKEN = "s3cret-token"


@pytest.fixture
def server():
    paused = []
    srv = ControlServer(CollectorRegistry(), "127.0.0.1", 0, token=TOKEN)
    srv.add("POST", "/pause", lambda req: (paused.append(True), (200, "paused"))[1])
    srv.add("GET", "/healthz", lambda req: (200, "ok"), open=True)
    srv.start()
    yield srv, paused
    srv.stop()


def call(srv, method, path, auth=None):
    req = urllib.request.Request(f"http://127.0.0.1:{srv.port}{path}", method=method)
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, data=b"" if method == "POST" else None, timeout=10) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


def test_no_token_401_wrong_token_403_right_token_works(server, caplog):
    srv, paused = server
    caplog.set_level(logging.WARNING, logger="streamchaos.httpserver")
    status, headers = call(srv, "POST", "/pause")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert call(srv, "POST", "/pause", "Basic abc")[0] == 401
    assert call(srv, "POST", "/pause", "Bearer nope")[0] == 403
    assert paused == []
    assert call(srv, "POST", "/pause", f"Bearer {TOKEN}")[0] == 200
    assert paused == [True]
    for _ in range(5):  # refused again: no new log lines within the minute
        call(srv, "POST", "/pause", "Bearer nope")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("refused" in line for line in lines)
    assert not any(TOKEN in line or "nope" in line for line in lines)


def test_reads_stay_open(server):
    srv, _ = server
    assert call(srv, "GET", "/metrics")[0] == 200
    assert call(srv, "GET", "/healthz")[0] == 200


def write(tmp_path, metrics, control=""):
    path = tmp_path / "e.yaml"
    path.write_text(
        f"experiment: e\nroutes: [{{source: s, shadow: s.shadow}}]\nmetrics: {metrics}\n{control}"
    )
    return str(path)


@pytest.mark.parametrize("bind", ["0.0.0.0", "10.1.2.3", "::", "bridge.example"])
def test_a_reachable_port_without_a_token_is_refused(bind, tmp_path, capsys):
    assert main(["validate", "-c", write(tmp_path, f"{{bind: '{bind}'}}")]) == 2
    assert f"control.token: required with metrics.bind {bind}" in capsys.readouterr().err


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(bind, tmp_path):
    assert main(["validate", "-c", write(tmp_path, f"{{bind: '{bind}'}}")]) == 0


def test_a_reachable_port_with_a_token_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("CTL_TOKEN", TOKEN)
    control = "control: {token: {env: CTL_TOKEN}}\n"
    assert main(["validate", "-c", write(tmp_path, "{bind: 0.0.0.0}", control)]) == 0
    no_metrics = write(tmp_path, "{enabled: false, bind: 0.0.0.0}")
    assert main(["validate", "-c", no_metrics]) == 0  # no port, nothing to protect


def test_validate_resolves_the_token(tmp_path, capsys):
    control = "control: {token: {env: CTL_TOKEN_NOT_SET}}\n"
    assert main(["validate", "-c", write(tmp_path, "{bind: 0.0.0.0}", control)]) == 2
    assert "control.token: environment variable CTL_TOKEN_NOT_SET is not set" in (
        capsys.readouterr().err
    )


def test_validate_refuses_an_empty_token_and_unresolvable_shadow_secrets(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CTL_EMPTY", "  \n")
    control = "control: {token: {env: CTL_EMPTY}}\n"
    assert main(["validate", "-c", write(tmp_path, "{bind: 0.0.0.0}", control)]) == 2
    assert "control.token: the secret is empty" in capsys.readouterr().err
    shadow = (
        "kafka: {shadow: {bootstrap_servers: 's:9092', security: {protocol: SASL_SSL, "
        "sasl_mechanism: PLAIN, sasl_username: u, sasl_password: {env: SHADOW_PW_UNSET}}}}\n"
    )
    assert main(["validate", "-c", write(tmp_path, "{}", shadow)]) == 2
    err = capsys.readouterr().err
    assert "kafka.shadow.security.sasl_password: environment variable SHADOW_PW_UNSET" in err
