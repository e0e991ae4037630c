"""The project's image as a service: built from the Dockerfile, run against a Kafka
container on a network of its own. Health checks answer, it runs as uid 10001, and a
SIGTERM (`stop`) releases the held records, commits and exits 0."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import yaml
from testcontainers.core.network import Network

from streamchaos.containers import _free_port, kafka_container
from streamchaos.kafkatools import committed_offsets, create_topics, end_offsets, produce_all
from tests.containers.conftest import bridge_image
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.containers
RECORDS = 2000


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return 0


def process_uid(container) -> int:
    """The real uid of the container's main process, read from /proc on this host (a local
    rootful engine: no user namespace maps it; no exec session is left behind)."""
    container.reload()
    status = Path(f"/proc/{container.attrs['State']['Pid']}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))


def ready(container, url: str) -> bool:
    """``url`` answers 200; a container that exited fails at once, with its logs."""
    container.reload()
    if container.status == "exited":
        pytest.fail(f"the bridge exited:\n{container.logs().decode(errors='replace')[-3000:]}")
    return http_status(url) == 200


@pytest.mark.timeout(600)
def test_image_serves_health_runs_unprivileged_and_stops_cleanly(engine, no_leftovers, tmp_path):
    with Network() as network, kafka_container(network=network) as kafka:
        create_topics(kafka.address, ["features"], 2)
        produce_all(
            kafka.address,
            (
                {"topic": "features", "key": f"k{i}", "value": f'{{"x": {i}}}'}
                for i in range(RECORDS)
            ),
        )
        config = tmp_path / "experiment.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "experiment": "image",
                    "kafka": {"group_id": "image-bridge"},
                    "routes": [
                        {
                            "source": "features",
                            "shadow": "features.shadow",
                            "format": "json",
                            "create_shadow": True,
                            # held far past the test: only the SIGTERM releases them
                            "faults": [{"type": "delay", "fraction": 0.2, "delay": "10m"}],
                        }
                    ],
                    "metrics": {"bind": "0.0.0.0", "port": 9464},
                    "control": {"token": {"env": "STREAMCHAOS_CONTROL_TOKEN"}},
                }
            )
        )
        config.chmod(0o644)
        port = _free_port()
        bridge = engine.containers.create(
            bridge_image(),
            environment={
                "KAFKA_BOOTSTRAP_SERVERS": kafka.internal,
                "STREAMCHAOS_CONTROL_TOKEN": "image-test-token",
            },
            volumes={str(config): {"bind": "/config/experiment.yaml", "mode": "ro"}},
            ports={"9464/tcp": ("127.0.0.1", port)},
            network=network.name,
        )
        try:
            bridge.start()
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: ready(bridge, f"{base}/readyz"), 90, "/readyz")
            assert http_status(f"{base}/healthz") == 200
            assert process_uid(bridge) == 10001

            passed = RECORDS * 0.8 * 0.9
            wait_until(
                lambda: sum(end_offsets(kafka.address, "features.shadow").values()) >= passed,
                60,
                "the records no fault holds in the shadow",
            )
            assert sum(end_offsets(kafka.address, "features.shadow").values()) < RECORDS

            bridge.stop(timeout=45)  # SIGTERM; a SIGKILL after 45 s would exit 137
            status = bridge.wait(timeout=60)
            logs = bridge.logs().decode(errors="replace")
            assert status["StatusCode"] == 0, logs[-3000:]
        finally:
            bridge.remove(force=True, v=True)

        assert sum(end_offsets(kafka.address, "features.shadow").values()) == RECORDS
        assert committed_offsets(kafka.address, "image-bridge", "features") == end_offsets(
            kafka.address, "features"
        )
