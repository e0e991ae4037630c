"""The pytest plugin's Testcontainers path, end to end: the docs/pytest-plugin.md example
in a pytest run of its own that has a container engine and no broker or registry, so its
fixtures start (and remove) a Kafka and a registry container."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers
ROOT = Path(__file__).resolve().parents[2]

IN_CONTAINERS = """

def test_the_fixtures_are_containers(kafka_bootstrap, schema_registry_url):
    import docker
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client = docker.from_env()
    published = {
        f"{b['HostIp']}:{b['HostPort']}"
        for c in client.containers.list()
        for bindings in (c.attrs["NetworkSettings"]["Ports"] or {}).values()
        for b in bindings or []
    }
    client.close()
    assert kafka_bootstrap in published
    assert schema_registry_url.split("//")[1].split("/")[0] in published
    registry = SchemaRegistryClient({"url": schema_registry_url})
    schema = '{"type": "record", "name": "F", "fields": [{"name": "x", "type": "double"}]}'
    schema_id = registry.register_schema("features-value", Schema(schema, "AVRO"))
    assert "x" in registry.get_schema(schema_id).schema_str
"""


def docs_example() -> str:
    doc = (ROOT / "docs/pytest-plugin.md").read_text()
    return re.search(r"```python\n(.*?)```", doc, re.S).group(1)


@pytest.mark.timeout(900)
def test_plugin_fixtures_start_containers_and_remove_them(engine, no_leftovers, tmp_path):
    (tmp_path / "test_example.py").write_text(docs_example() + IN_CONTAINERS)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "PYTEST_ADDOPTS")
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-5000:]
    assert "2 passed" in out, out[-5000:]
