"""SASL/PLAIN against the local stack's SASL listener; secrets never reach any output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from streamchaos.kafkatools import produce_all, read_all, unique_name
from tests.integration.conftest import keyed_records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sasl():
    bootstrap = os.environ.get("KAFKA_SASL_BOOTSTRAP_SERVERS")
    if not bootstrap:
        pytest.fail(
            "KAFKA_SASL_BOOTSTRAP_SERVERS is not set: the local stack (`make up`, "
            "`make test`) runs a SASL/PLAIN listener and writes it to .local/stack.env"
        )
    return {
        "bootstrap": bootstrap,
        "user": os.environ["KAFKA_SASL_USERNAME"],
        "password": os.environ["KAFKA_SASL_PASSWORD"],
    }


def run_cli(args, env, timeout=90):
    return subprocess.run(
        [sys.executable, "-m", "streamchaos", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sasl_config(tmp_path, sasl, source, shadow):
    path = tmp_path / "sasl.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "experiment": "sasl",
                "kafka": {
                    "bootstrap_servers": sasl["bootstrap"],
                    "group_id": unique_name("sasl"),
                    "security": {
                        "protocol": "SASL_PLAINTEXT",
                        "sasl_mechanism": "PLAIN",
                        "sasl_username": sasl["user"],
                        "sasl_password": {"env": "BRIDGE_KAFKA_PASSWORD"},
                    },
                },
                "routes": [{"source": source, "shadow": shadow}],
                "metrics": {"port": 0},
            }
        )
    )
    return path


def env_with(password):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env["BRIDGE_KAFKA_PASSWORD"] = password
    return env


def test_right_credentials_bridge_and_no_secret_in_any_output(
    kafka_bootstrap, sasl, topic_factory, tmp_path
):
    source = topic_factory(partitions=1)
    shadow = topic_factory(partitions=1, suffix=".shadow")
    produce_all(kafka_bootstrap, keyed_records(source, 100, 1))
    path = sasl_config(tmp_path, sasl, source, shadow)
    env = env_with(sasl["password"])
    validate = run_cli(["validate", "-c", str(path)], env)
    run = run_cli(["-v", "run", "-c", str(path), "--idle-exit", "3"], env)
    json_run = run_cli(["--log-format", "json", "run", "-c", str(path), "--idle-exit", "2"], env)
    assert validate.returncode == 0 and run.returncode == 0, run.stderr[-2000:]
    assert json_run.returncode == 0, json_run.stderr[-2000:]  # its output is checked below
    assert len(read_all(kafka_bootstrap, shadow, expect=100)) == 100
    for proc in (validate, run, json_run):
        assert sasl["password"] not in proc.stdout + proc.stderr


def test_wrong_credentials_fail_fast_with_a_clear_error(sasl, tmp_path):
    path = sasl_config(tmp_path, sasl, unique_name("src"), unique_name("src") + ".shadow")
    wrong = "definitely-not-" + sasl["password"]
    # a hang would end in TimeoutExpired: the bound is the subprocess timeout, not a timing
    proc = run_cli(["run", "-c", str(path)], env_with(wrong), timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "authentication failed" in proc.stderr.lower()
    assert wrong not in proc.stdout + proc.stderr
