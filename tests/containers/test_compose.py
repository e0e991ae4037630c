"""docker-compose.yml, run for real under podman-compose with the images named by settings:
synthetic features → bridge → shadow, Prometheus scraping the bridge inside the stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from streamchaos.containers import _free_port
from streamchaos.kafkatools import unique_name
from tests.integration.conftest import shadow_count, wait_until

pytestmark = pytest.mark.containers
ROOT = Path(__file__).resolve().parents[2]
RECORDS = 2000


def prometheus_value(port: int, query: str) -> float | None:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            result = json.load(response)["data"]["result"]
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


@pytest.mark.timeout(900)
def test_compose_stack_delivers_shadow_records_and_prometheus_scrapes_them(
    engine, no_leftovers, tmp_path
):
    project = unique_name("sc").replace("-", "").lower()
    ports = {
        name: str(_free_port())
        for name in (
            "KAFKA_HOST_PORT",
            "REGISTRY_HOST_PORT",
            "BRIDGE_HOST_PORT",
            "PROMETHEUS_HOST_PORT",
        )
    }
    env = {
        **os.environ,
        **ports,
        "STREAMCHAOS_CONTROL_TOKEN": "compose-test-token",
        "SYNTH_RECORDS": str(RECORDS),
    }
    compose = [
        str(Path(sys.executable).with_name("podman-compose")),
        "-p",
        project,
        "-f",
        str(ROOT / "docker-compose.yml"),
    ]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*compose, *args], env=env, capture_output=True, text=True, timeout=300
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{out[-3000:]}"
        return out

    kafka = f"127.0.0.1:{ports['KAFKA_HOST_PORT']}"
    prometheus = int(ports["PROMETHEUS_HOST_PORT"])
    label = f"io.podman.compose.project={project}"
    try:
        run("up", "-d")
        wait_until(
            lambda: (
                _topic_exists(kafka, "features.payments.shadow")
                and shadow_count(kafka, "features.payments.shadow") >= RECORDS
            ),
            180,
            "the synth records in the shadow",
        )
        assert shadow_count(kafka, "features.payments.shadow") == RECORDS
        wait_until(
            lambda: (
                prometheus_value(prometheus, "sum(streamchaos_records_produced_total)") == RECORDS
            ),
            120,
            "Prometheus to scrape the bridge's produced count",
        )
        assert prometheus_value(prometheus, 'up{job="streamchaos"}') == 1.0
        injections = prometheus_value(prometheus, "sum(streamchaos_injections_total)")
        assert injections is not None and injections > 0

        run("stop", "-t", "45", "streamchaos")  # SIGTERM: release, flush, commit
        (bridge,) = engine.containers.list(
            all=True, filters={"label": [label, "com.docker.compose.service=streamchaos"]}
        )
        assert bridge.attrs["State"]["ExitCode"] == 0, bridge.logs().decode()[-3000:]
        run("down", "-v", "-t", "45")
    finally:  # whatever `down` did not get to: by id
        for container in engine.containers.list(all=True, filters={"label": label}):
            container.remove(force=True, v=True)
        podman = shutil.which("podman")  # podman-compose puts the services in a pod
        pods = subprocess.run(
            [podman or "true", "pod", "ls", "-q", "--filter", f"label={label}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        for pod in pods.stdout.split():
            subprocess.run([podman, "pod", "rm", "-f", pod], capture_output=True, timeout=60)
        for network in engine.networks.list(filters={"label": label}):
            network.remove()


def _topic_exists(bootstrap: str, topic: str) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=3).topics
    except Exception:
        return False
    return topic in topics
