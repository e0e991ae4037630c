"""Helpers for driving the bridge end to end against the real broker."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from streamchaos.kafkatools import committed_offsets, end_offsets, produce_all
from streamchaos.ledger import read_ledger
from streamchaos.lineage import LINEAGE_HEADER, Lineage
from tests.integration.experiment import free_port

ROOT = Path(__file__).resolve().parents[2]


def bridge_config(
    bootstrap: str, group: str, routes: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "experiment": "it",
        "seed": 7,
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "consumer": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
        },
        "routes": routes,
        "metrics": {"enabled": True, "port": 0},
    }
    cfg.update(extra)
    return cfg


def route_config(
    bootstrap: str, group: str, source: str, shadow: str, **route: Any
) -> dict[str, Any]:
    """``bridge_config`` of one route (``route``: its other settings, e.g. ``faults``)."""
    return bridge_config(bootstrap, group, [{"source": source, "shadow": shadow, **route}])


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class BridgeProcess:
    """``streamchaos run`` in a subprocess, its log in a file; stopped by PID only."""

    def __init__(self, config: Path, log: Path, idle_exit: float | None = None) -> None:
        args = [sys.executable, "-m", "streamchaos", "run", "-c", str(config)]
        if idle_exit is not None:
            args += ["--idle-exit", str(idle_exit)]
        self.log_path = log
        self._log = log.open("w")
        env = dict(os.environ)
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the config file names the broker
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited early:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not logged in {timeout}s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()


@pytest.fixture
def bridge_process(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(cfg: dict[str, Any], idle_exit: float | None = None) -> BridgeProcess:
        n = len(started)
        path = write_config(tmp_path / f"bridge{n}.yaml", cfg)
        proc = BridgeProcess(path, tmp_path / f"bridge{n}.log", idle_exit)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def keyed_records(topic: str, n: int, partitions: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Keyed records with headers and explicit timestamps, round-robin over partitions."""
    base_ts = int(time.time() * 1000) - 3_600_000  # an hour ago: inside any retention
    for i in range(start, start + n):
        yield {
            "topic": topic,
            "key": f"user-{i % 97}".encode(),
            "value": f'{{"i": {i}, "amount": {i * 0.5}}}'.encode(),
            "partition": i % partitions,
            "timestamp": base_ts + i,
            "headers": [("trace", f"t{i}".encode()), ("empty", b"")],
        }


class SlowProducer(threading.Thread):
    """Produces ``n`` records in chunks with pauses, so a bridge can be hit mid-stream."""

    def __init__(
        self, bootstrap: str, topic: str, n: int, partitions: int, chunks: int, pause: float
    ) -> None:
        super().__init__(daemon=True)
        self.args = (bootstrap, topic, n, partitions, chunks, pause)
        self.error: BaseException | None = None

    def run(self) -> None:
        bootstrap, topic, n, partitions, chunks, pause = self.args
        try:
            size = n // chunks
            for c in range(chunks):
                produce_all(bootstrap, keyed_records(topic, size, partitions, start=c * size))
                time.sleep(pause)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def produce_gaussian(
    bootstrap: str, topic: str, field: str, mean: float, sd: float, rate: float, seed: int,
    done: Callable[[], bool],
) -> int:  # fmt: skip
    """A live feature stream: JSON records ``{field: N(mean, sd)}`` (seeded) at ``rate`` per
    second until ``done()``; returns how many were produced, every one delivered."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    draw, sent, start = random.Random(seed), 0, time.monotonic()
    while not done():
        while sent < (time.monotonic() - start) * rate:
            producer.produce(topic, json.dumps({field: draw.gauss(mean, sd)}).encode())
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    assert producer.flush(30) == 0
    return sent


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_committed(bootstrap: str, group: str, topic: str, timeout: float) -> None:
    """Until ``group`` committed every record of ``topic`` (its end offsets)."""
    wait_until(
        lambda: committed_offsets(bootstrap, group, topic) == end_offsets(bootstrap, topic),
        timeout,
        f"every record of {topic} committed",
    )


def stop_all(members: list[BridgeProcess]) -> None:
    """SIGTERM each bridge process: each must exit 0 (nothing left undelivered)."""
    for member in members:
        member.signal(signal.SIGTERM)
    assert [member.wait(60) for member in members] == [0] * len(members)


def shadow_count(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, topic).values())


def origin_of(msg: Any, lineage: Lineage | None = None) -> tuple[int, int]:
    """(partition, offset) of a shadow record's source: from its lineage header, or from
    the ledger's lineage lines (``lineage_of``)."""
    origin = (lineage or Lineage()).origin_of(msg)
    if origin is None:
        raise AssertionError(f"no lineage for {msg.topic()}[{msg.partition()}]@{msg.offset()}")
    return origin[1], origin[2]


def lineage_of(ledger: Path) -> Lineage:
    """The lineage lines of a ledger file."""
    return Lineage.of(read_ledger(ledger))


HEADERS = {"lineage_header": LINEAGE_HEADER}  # ``bridge:`` settings: lineage on each record


@pytest.fixture
def private_broker(tmp_path):
    """A broker of this test's own, so the test can take it away."""
    env = dict(
        os.environ,
        STACK_DIR=str(tmp_path / "stack"),
        STACK_REGISTRY="0",
        KAFKA_PORT=str(free_port()),
        KAFKA_CONTROLLER_PORT=str(free_port()),
    )
    env["KAFKA_SASL_PORT"] = str(free_port())

    def up(keep_data: bool = False) -> None:  # again after down(): the same ports and data
        done = subprocess.run(
            ["bash", str(ROOT / "scripts/stack.sh"), "up"],
            env=dict(env, STACK_KEEP_DATA="1" if keep_data else "0"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        stack["up"] = True

    stack: dict[str, Any] = {"bootstrap": f"127.0.0.1:{env['KAFKA_PORT']}", "env": env}
    up()

    def down() -> None:
        if stack["up"]:
            subprocess.run(
                ["bash", str(ROOT / "scripts/stack.sh"), "down"],
                env=env,
                capture_output=True,
                timeout=120,
            )
            stack["up"] = False

    def kill() -> None:  # the broker's JVM SIGKILLed, as a crash would
        pid = (Path(env["STACK_DIR"]) / "kafka.pid").read_text().strip()
        os.kill(int(pid), signal.SIGKILL)
        down()  # the stack's own bookkeeping: nothing left to stop

    stack["down"], stack["restart"], stack["kill"] = down, lambda: up(keep_data=True), kill
    yield stack
    down()
