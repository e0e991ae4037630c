"""Holds longer than ``bridge.hold_horizon`` wait in a Kafka topic, not in memory: on the
real broker, across SIGKILLs, each held record reaches the shadow once and on time."""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.request
from collections import Counter

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from streamchaos.evaluation.audit import audit
from streamchaos.kafkatools import end_offsets
from streamchaos.ledger import read_ledger, read_ledger_topic
from streamchaos.lineage import LINEAGE_HEADER
from tests.integration.conftest import (
    SlowProducer,
    bridge_config,
    origin_of,
    route_config,
    shadow_count,
    stop_all,
    wait_committed,
    wait_until,
)

pytestmark = pytest.mark.integration

DELAY = 60.0
TOLERANCE = 20.0  # a commit interval, a restart's group join (6 s session), a loaded machine


class ShadowReader(threading.Thread):
    """A ``read_committed`` reader of the shadow: when each source record's output became
    visible (wall clock), and how many times."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )
        self.seen: Counter[tuple[int, int]] = Counter()
        self.arrived: dict[tuple[int, int], tuple[float, int]] = {}  # origin -> (at, source ts)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for msg in self.consumer.consume(500, 0.2):
                if msg.error() is None:
                    origin = origin_of(msg)
                    self.seen[origin] += 1
                    self.arrived.setdefault(origin, (time.time(), msg.timestamp()[1]))
        self.consumer.close()


def live_stream(bootstrap: str, topic: str, n: int, seconds: float, partitions: int) -> None:
    """``n`` JSON records over ``seconds``, stamped when sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    start = time.monotonic()
    for i in range(n):
        while i > (time.monotonic() - start) * n / seconds:
            time.sleep(0.01)
        value = b'{"i": %d, "amount": %f}' % (i, i * 0.5)
        producer.produce(topic, value, b"k%d" % (i % 50), partition=i % partitions)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_a_minute_long_delay_survives_two_sigkills_and_each_record_arrives_once_on_time(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    """20 % of a live stream delayed 60 s with an in-memory horizon of 1 s, exactly-once;
    the bridge SIGKILLed twice while records are held, restarted each time. Every source
    record reaches the shadow once; each delayed one between 60 s and 60 s + the tolerance
    after it was sent, and its delay is ledgered once."""
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    ledger = topic_factory(partitions=1, suffix=".ledger")
    faults = [{"type": "delay", "fraction": 0.2, "delay": f"{DELAY:g}s"}]
    cfg = bridge_config(
        kafka_bootstrap, group_id,
        [{"source": source, "shadow": shadow, "format": "json", "faults": faults}],
        delivery="exactly-once", ledger={"topic": ledger},
        bridge={"lineage_header": LINEAGE_HEADER, "hold_horizon": "1s"},
    )  # fmt: skip
    cfg["kafka"]["transactional_id"] = f"{group_id}.m0"
    reader = ShadowReader(kafka_bootstrap, shadow, 3)
    reader.start()
    member = bridge_process(cfg)
    member.wait_for_log("assigned", timeout=60)
    total = 3000
    stream = threading.Thread(target=live_stream, args=(kafka_bootstrap, source, total, 15.0, 3))
    stream.start()
    for pause in (8.0, 15.0):  # mid-stream, then with every delayed record held
        time.sleep(pause)
        member.kill()
        member = bridge_process(cfg)
    stream.join(60)
    wait_until(lambda: len(reader.seen) >= total, DELAY + 120, "every record in the shadow")
    time.sleep(3)  # a repeat would come in now
    reader.done.set()
    reader.join(10)
    stop_all([member])
    assert len(reader.seen) == total
    assert set(reader.seen.values()) == {1}, "a record reached the shadow twice"
    entries = read_ledger_topic(kafka_bootstrap, ledger, experiment="it")
    lines = [
        (e["source"]["partition"], e["source"]["offset"])
        for e in entries
        if e["kind"] == "injection" and e["fault"] == "delay"
    ]
    assert len(lines) == len(set(lines)), "a delay ledgered twice"
    delayed = set(lines)
    assert 0.15 * total < len(delayed) < 0.25 * total
    late = {o: at - ts / 1000 for o, (at, ts) in reader.arrived.items()}
    off_time = {o: round(late[o], 1) for o in delayed if not DELAY <= late[o] <= DELAY + TOLERANCE}
    assert not off_time, f"held records out of [{DELAY}, {DELAY + TOLERANCE}] s: {off_time}"
    assert max(late[o] for o in late if o not in delayed) < DELAY  # the others went on


def scrape(port: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - read once, closed by GC
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_however_many_records_wait(
    kafka_bootstrap, topic_factory, group_id, bridge_process
):
    """Every record of a live stream delayed 10 minutes, horizon 1 s: the bridge holding
    100,000 records is about as large as when it held 1,000. (Measured 2026-12-08: 2 MiB
    more; the same run held in memory, without the horizon: 102 MiB more.)"""
    source = topic_factory(partitions=3)
    shadow = topic_factory(partitions=3, suffix=".shadow")
    faults = [{"type": "delay", "fraction": 1.0, "delay": "10m"}]
    cfg = route_config(kafka_bootstrap, group_id, source, shadow, format="json", faults=faults)
    cfg["bridge"] = {"hold_horizon": "1s"}
    member = bridge_process(cfg)
    member.wait_for_log("assigned", timeout=60)
    sizes, held = {}, 0
    for n in (1_000, 99_000):
        stream = SlowProducer(kafka_bootstrap, source, n, 3, chunks=max(1, n // 2200), pause=0.1)
        stream.run()  # here, not in a thread: done when it returns
        assert stream.error is None
        held += n
        wait_committed(kafka_bootstrap, group_id, source, 180)  # every one durably held
        time.sleep(2)  # the producer's buffers settle
        sizes[held] = rss_mib(member.proc.pid)
    hold = f"{shadow.removesuffix('.shadow')}.hold.shadow"
    assert sum(end_offsets(kafka_bootstrap, hold).values()) == held
    assert shadow_count(kafka_bootstrap, shadow) == 0  # every one still held
    stop_all([member])
    grown = sizes[100_000] - sizes[1_000]
    assert grown < 15, f"RSS {sizes} MiB: {grown:.0f} MiB more for 99,000 more held records"


def test_the_kill_switch_releases_what_waits_in_the_hold_topic_at_once(
    kafka_bootstrap, topic_factory, group_id, bridge_process, tmp_path
):
    """Half the records delayed an hour, durably held; the kill switch (SIGUSR1) sends
    them all on at once, each ledgered as released early."""
    source = topic_factory(partitions=2)
    shadow = topic_factory(partitions=2, suffix=".shadow")
    ledger = tmp_path / "ledger.jsonl"
    faults = [{"type": "delay", "fraction": 0.5, "delay": "1h"}]
    cfg = route_config(kafka_bootstrap, group_id, source, shadow, format="json", faults=faults)
    cfg["bridge"] = {"hold_horizon": "1s"}
    cfg["ledger"] = {"path": str(ledger)}
    member = bridge_process(cfg)
    member.wait_for_log("assigned", timeout=60)
    SlowProducer(kafka_bootstrap, source, 400, 2, chunks=1, pause=0).run()
    wait_committed(kafka_bootstrap, group_id, source, 60)  # every one passed or held
    held = 400 - shadow_count(kafka_bootstrap, shadow)
    assert 100 < held < 300
    waiting = audit(kafka_bootstrap, source, shadow, ledger)  # held: not missing
    assert waiting.ok and len(waiting.held) == held and waiting.overdue == 0, waiting.summary()
    assert f"held: {held} source records wait in {shadow[:-7]}.hold.shadow" in waiting.summary()
    port = re.search(r"metrics on http://127.0.0.1:(\d+)/metrics", member.log()).group(1)
    gauge = f'streamchaos_long_held_records{{route="{source}"}} {float(held)}'
    wait_until(lambda: gauge in scrape(port), 30, f"{gauge} in /metrics")
    member.signal(signal.SIGUSR1)
    wait_until(lambda: shadow_count(kafka_bootstrap, shadow) == 400, 60, "the held records")
    stop_all([member])
    delays = [
        e for e in read_ledger(ledger) if e.get("fault") == "delay" and e["kind"] == "injection"
    ]
    assert len(delays) == held
    assert all(e["detail"] == {"delay_ms": 3600000.0, "released_early": True} for e in delays)
    released = audit(kafka_bootstrap, source, shadow, ledger)
    assert released.ok and not released.held, released.summary()
