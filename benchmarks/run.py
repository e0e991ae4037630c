"""Throughput of the bridge as a ratio to the faster of two plain confluent-kafka loops.

Two source topics are filled once (3 partitions each, keyed records carrying the same ten
features): Confluent-framed Avro values of ~130 bytes with one header, and JSON values of
~200 bytes with none. Each loop reads one of them from the beginning with a fresh group
and writes to a shadow topic. Python's garbage-collector thresholds move a plain loop by
up to ~40 %, so each source has two plain loops, one with Python's thresholds and one with
the bridge's; a loop's ratio in a round is its rate divided by the faster of its source's
two, and the report gives the median over rounds. The bridge runs as ``streamchaos run``
runs it (thresholds raised). The clock starts at the first consumed record (the group
join is excluded) and stops when the last output is acknowledged. Each round starts with
another loop, to spread the machine's noise.

Defaults: 300,000 records a source, 11 measured rounds after 1 warm-up round. A loop
costs ~0.3 s to start and join plus its records: ~1 s for the plain loops and a
passthrough bridge, ~1.5 s for a fault row, so a round of the 16 loops takes ~25 s and a
default run ~5 minutes on 2 cores; if every bridge row fell to 100,000 records/s it would
take ~10, still under the ~15 a run may take. One round's ratios move by up to ±20
points with the machine's noise and a target is judged on the median, so the time goes
to rounds (an odd count: one middle round) rather than to longer loops; 300,000 records
already make a timed span of a few hundred consumed batches, in which the first fetch
and the final flush weigh little.
Usage: ``make bench`` or ``python -m benchmarks.run [--records N] [--rounds R] [--warmup W]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from benchmarks import latency
from streamchaos.bridge import Bridge
from streamchaos.bridge.gc_tuning import GC_THRESHOLDS, fewer_collections
from streamchaos.codec import AvroCodec, ParsedSchema, Registry, frame
from streamchaos.config import config_from_dict
from streamchaos.kafkaconf import PRODUCER_DEFAULTS
from streamchaos.kafkatools import create_topics, delete_topics, produce_all, unique_name
from streamchaos.lineage import LINEAGE_HEADER

PARTITIONS = 3
AVRO, JSON = "Avro", "JSON"  # the two source topics, as the report names them
VALUE_BYTES = {AVRO: 130, JSON: 200}  # about; tests/unit/test_bench_report.py checks them
SCHEMA = {
    "type": "record",
    "name": "Payment",
    "namespace": "bench",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "merchant", "type": "string"},
        {"name": "country", "type": "string"},
        {"name": "device", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "f1", "type": "double"},
        {"name": "f2", "type": "double"},
        {"name": "f3", "type": "double"},
        {"name": "note", "type": "string"},
    ],
}


def features(i: int) -> dict[str, Any]:
    """Record ``i``'s values: the same in both sources, so their rows differ by format only."""
    return {
        "user": f"user-{i % 5000}",
        "amount": 12.5 + i % 100,
        "merchant": "m-0042",
        "country": "DE",
        "device": "ios",
        "count": i,
        "f1": i % 7 * 0.5,
        "f2": i % 11 * 1.5,
        "f3": i % 13 * 2.5,
        "note": "x" * 66,
    }


def _keyed(topic: str, i: int, value: bytes) -> dict[str, Any]:
    key = b"user-%d" % (i % 5000)
    return {"topic": topic, "key": key, "value": value, "partition": i % PARTITIONS}


def avro_records(topic: str, n: int, schema_id: int) -> Iterator[dict[str, Any]]:
    """Confluent-framed Avro feature records with one header, as ``produce_all`` takes them."""
    local = ParsedSchema.of(SCHEMA)
    codec = AvroCodec(None, local)
    for i in range(n):
        value = frame(schema_id, codec.encode(features(i), local, None))
        yield _keyed(topic, i, value) | {"headers": [("trace", b"t-%d" % i)]}


def json_records(topic: str, n: int) -> Iterator[dict[str, Any]]:
    """The same features as compact JSON, without headers (what a new user's topic holds)."""
    for i in range(n):
        yield _keyed(topic, i, json.dumps(features(i), separators=(",", ":")).encode())


def fill(bootstrap: str, registry_url: str, sources: dict[str, str], n: int) -> None:
    """Write ``n`` records to each source topic (``sources``: format → topic)."""
    schema_id = Registry(registry_url).register(f"{sources[AVRO]}-value", SCHEMA)
    produce_all(bootstrap, avro_records(sources[AVRO], n, schema_id), timeout=300)
    produce_all(bootstrap, json_records(sources[JSON], n), timeout=300)


def plain_passthrough(
    bootstrap: str, source: str, shadow: str, n: int, tune_gc: bool = False
) -> float:
    """The baseline: a tuned consume→produce loop with no bookkeeping at all (and, with
    ``tune_gc``, the garbage-collector setting the bridge's CLI uses)."""
    with fewer_collections(tune_gc):
        return _plain(bootstrap, source, shadow, n)


def _clients(bootstrap: str, source: str) -> tuple[Consumer, Producer]:
    """A tuned consumer, subscribed to ``source`` from its start, and the bridge's producer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("plain"),
            "auto.offset.reset": "earliest",
            "fetch.queue.backoff.ms": 20,
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([source])
    return consumer, Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS})


def _plain(bootstrap: str, source: str, shadow: str, n: int) -> float:
    """Consume batches until ``n`` records were read (300 s at most), produce each one as
    it came, serve delivery reports after each batch; the rate once every record landed."""
    consumer, producer = _clients(bootstrap, source)
    count, start = 0, None
    deadline = time.monotonic() + 300
    while count < n and time.monotonic() < deadline:
        msgs: list[Any] = consumer.consume(1000, 0.005)
        if msgs and start is None:
            start = time.perf_counter()
        for msg in msgs:
            ts_type, ts = msg.timestamp()
            producer.produce(
                shadow,
                msg.value(),
                msg.key(),
                msg.partition(),
                None,
                None,
                ts if ts_type else 0,
                msg.headers(),
            )
        count += len(msgs)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    if count < n:  # a deadline-ended loop reports no rate
        raise RuntimeError(f"plain loop: {count} of {n} records in 300 s")
    return n / elapsed


class TimedBridge(Bridge):
    """Stops itself once ``target`` outputs were acknowledged; times first input → last ack."""

    target = 0
    first: float | None = None  # perf_counter() at the first consumed batch
    last: float | None = None  # ... and when the Nth output was acknowledged

    def _open(self) -> None:
        super()._open()
        assert self._fwd is not None
        forward, tick = self._fwd.forward, self._fwd.tick

        def timed_forward(msgs: list[Any], now: float) -> None:
            if self.first is None:
                self.first = time.perf_counter()
            forward(msgs, now)
            self._tail()

        def timed_tick(now: float) -> None:  # releases held records
            tick(now)
            self._tail()

        self._fwd.forward = timed_forward  # type: ignore[method-assign]
        self._fwd.tick = timed_tick  # type: ignore[method-assign]
        landed = self.tracker.on_complete

        def timed_landed(batch: Any) -> None:  # the Nth output acknowledged: time, stop
            landed(batch)
            if self.last is None and sum(s.produced for s in self._routes.values()) >= self.target:
                self.last = time.perf_counter()
                self.stop()

        self.tracker.on_complete = timed_landed

    def _tail(self) -> None:
        """Once every record was read, flush as the plain loop does at its end (the last
        run's report comes then, not a ``linger.ms`` later)."""
        if self.last is None and sum(s.consumed for s in self._routes.values()) >= self.target:
            self._producer.flush(60)


def bridge_passthrough(
    bootstrap: str,
    source: str,
    shadow: str,
    n: int,
    extra: dict[str, Any] | None = None,
    bridge: dict[str, Any] | None = None,
    ledger: bool = False,
    tune_gc: bool = True,
    exactly_once: bool = False,
) -> float:
    """The bridge in the foreground, as the CLI runs it (``tune_gc``), timed from its first
    consumed to its Nth acknowledged record; ``extra``: the route's format and faults;
    ``ledger``: ground truth to a JSONL file; ``exactly_once``: its transactions."""
    raw: dict[str, Any] = {
        "experiment": "bench",
        "kafka": {"bootstrap_servers": bootstrap, "group_id": unique_name("bridge")},
        "routes": [{"source": source, "shadow": shadow, **(extra or {})}],
        "metrics": {"enabled": False},
        "bridge": bridge or {},
        "schema_registry": {"url": os.environ.get("SCHEMA_REGISTRY_URL")},
    }
    if exactly_once:
        raw["delivery"] = "exactly-once"
        raw["kafka"]["transactional_id"] = unique_name("bench")
    with tempfile.TemporaryDirectory() as tmp:
        if ledger:
            raw["ledger"] = {"path": str(Path(tmp) / "ledger.jsonl")}
        return _timed(raw, n, tune_gc)


def _timed(raw: dict[str, Any], n: int, tune_gc: bool) -> float:
    cfg = config_from_dict(raw, env={})
    timed = TimedBridge(cfg, registry=CollectorRegistry(), tune_gc=tune_gc)
    timed.target = n
    code = timed.run(idle_exit=60)
    if code != 0 or timed.first is None or timed.last is None:
        raise RuntimeError(f"the bridge did not deliver every record (exit code {code})")
    return n / (timed.last - timed.first)


@dataclass(frozen=True)
class Loop:
    """One measured loop: ``run(bootstrap, source topic, shadow topic, n)`` → records/s,
    reading the source of format ``source``."""

    run: Callable[[str, str, str, int], float]
    source: str = AVRO


FIVE, TEN = 0.05, 0.10  # the fault rows' fractions
DELAY = {"type": "delay", "delay": "20ms"}
NAN = {"type": "corrupt", "mode": "nan", "fields": ["amount"]}  # a double in both sources
DRIFT = {
    "type": "drift",
    "features": {f: {"shift": 3.0} for f in ("amount", "count", "f1", "f2", "f3")},
}


def faulty(*faults: dict[str, Any], fraction: float, fmt: str = "bytes", **kw: Any) -> Loop:
    """The bridge with ``faults`` on its route, in that order, each selecting ``fraction``
    of the records; ``kw``: ``bridge_passthrough``'s other arguments."""
    route = {"format": fmt, "faults": [f | {"fraction": fraction} for f in faults]}
    source = JSON if fmt == "json" else AVRO
    return Loop(partial(bridge_passthrough, extra=route, **kw), source)


PLAIN = {AVRO: "plain", JSON: "plain, JSON"}
PLAIN_GC = {src: f"{name}, GC tuned like the bridge" for src, name in PLAIN.items()}
PASSTHROUGH = {AVRO: "bridge", JSON: "bridge, JSON"}  # what a fault row's extra cost is over
THREE = "bridge + drift, corrupt, delay 10% each (Avro)"
LINEAGE = "bridge, ledger file (lineage lines)"  # passthrough, every record traced
HEADER_ROW = "bridge, lineage header on every record"
EXACTLY_ONCE = "bridge, exactly-once"
EXACTLY_ONCE_DELAY = "bridge + delay 5% (20 ms), exactly-once"
SCENARIOS: dict[str, Loop] = {
    PLAIN[AVRO]: Loop(plain_passthrough),
    PLAIN_GC[AVRO]: Loop(partial(plain_passthrough, tune_gc=True)),
    PLAIN[JSON]: Loop(plain_passthrough, JSON),
    PLAIN_GC[JSON]: Loop(partial(plain_passthrough, tune_gc=True), JSON),
    PASSTHROUGH[AVRO]: Loop(bridge_passthrough),
    "bridge, default GC": Loop(partial(bridge_passthrough, tune_gc=False)),
    LINEAGE: Loop(partial(bridge_passthrough, ledger=True)),
    HEADER_ROW: Loop(partial(bridge_passthrough, bridge={"lineage_header": LINEAGE_HEADER})),
    "bridge + delay 5% (20 ms)": faulty(DELAY, fraction=FIVE),
    "bridge + corrupt 5% (nan, 1 double, Avro)": faulty(NAN, fraction=FIVE, fmt="avro"),
    "bridge + drift 5% (5 numeric features)": faulty(DRIFT, fraction=FIVE, fmt="avro"),
    "bridge + drift 10% (5 numeric features)": faulty(DRIFT, fraction=TEN, fmt="avro"),
    THREE: faulty(DRIFT, NAN, DELAY, fraction=TEN, fmt="avro"),
    "bridge + corrupt 5% (Avro), ledger file": faulty(NAN, fraction=FIVE, fmt="avro", ledger=True),
    "bridge + delay 5% (20 ms), ledger file": faulty(DELAY, fraction=FIVE, ledger=True),
    EXACTLY_ONCE: Loop(partial(bridge_passthrough, exactly_once=True)),
    EXACTLY_ONCE_DELAY: faulty(DELAY, fraction=FIVE, exactly_once=True),
    PASSTHROUGH[JSON]: Loop(partial(bridge_passthrough, extra={"format": "json"}), JSON),
    "bridge + corrupt 5% (nan, 1 field, JSON)": faulty(NAN, fraction=FIVE, fmt="json"),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000, help="in each source topic")
    parser.add_argument("--rounds", type=int, default=11, help="measured rounds")
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured rounds first (broker JIT, caches)"
    )
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--readme", default="README.md", help="'' leaves it alone")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the visibility latency runs (~40 s)"
    )
    args = parser.parse_args()
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    sources = {AVRO: unique_name("bench"), JSON: unique_name("bench-json")}
    shadow = sources[AVRO] + ".shadow"
    create_topics(bootstrap, [*sources.values(), shadow], PARTITIONS)
    try:
        fill(bootstrap, os.environ["SCHEMA_REGISTRY_URL"], sources, args.records)
        rates = measure(bootstrap, sources, shadow, args)
    finally:
        delete_topics(bootstrap, [*sources.values(), shadow])
    delays = [] if args.no_latency else latency.measure(bootstrap)
    report(args, rates, delays)
    return 0


def measure(
    bootstrap: str, sources: dict[str, str], shadow: str, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Warm-up rounds, then the measured ones: every loop once per round, back to back,
    each round starting one loop further on (no loop keeps a fixed position)."""
    names = list(SCENARIOS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(-args.warmup, args.rounds):
        began = time.monotonic()
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            loop = SCENARIOS[name]
            rate = loop.run(bootstrap, sources[loop.source], shadow, args.records)
            if r >= 0:
                rates[name].append(rate)
        took = f"{time.monotonic() - began:.0f} s"
        if r < 0:
            print(f"warm-up round {args.warmup + r + 1} done ({took})", flush=True)
            continue
        each = "  ".join(f"{name} {values[-1]:,.0f}/s" for name, values in rates.items())
        print(f"round {r + 1} ({took}): {each}", flush=True)
    return rates


@dataclass(frozen=True)
class Target:
    """What an issue asks of one loop, as a ratio to the faster plain loop of its source."""

    want: float
    issue: int
    row: str  # the loop's name in the README's summary
    fraction: float  # the share of records its faults select (0: none)


TARGETS = {
    LINEAGE: Target(0.95, 16, "passthrough, lineage on (ledger lines)", 0.0),
    "bridge + delay 5% (20 ms)": Target(0.90, 16, "5 % `delay` 20 ms", FIVE),
    "bridge + corrupt 5% (nan, 1 field, JSON)": Target(
        0.85, 16, "5 % `corrupt` nan, JSON (one field)", FIVE
    ),
    "bridge + corrupt 5% (nan, 1 double, Avro)": Target(
        0.90, 16, "5 % `corrupt` nan, Avro (one double)", FIVE
    ),
    "bridge + drift 5% (5 numeric features)": Target(
        0.85, 16, "5 % `drift` (5 numeric features)", FIVE
    ),
    "bridge + drift 10% (5 numeric features)": Target(
        0.80, 16, "10 % `drift` (5 numeric features)", TEN
    ),
    # the share of records at least one of the three independent selections takes
    THREE: Target(
        0.75, 16, "three faults at 10 % each (`drift`, `corrupt`, `delay`)", 1 - (1 - TEN) ** 3
    ),
    "bridge + corrupt 5% (Avro), ledger file": Target(0.80, 16, "5 % `corrupt`, ledger file", FIVE),
    "bridge + delay 5% (20 ms), ledger file": Target(0.80, 16, "5 % `delay`, ledger file", FIVE),
    EXACTLY_ONCE: Target(0.85, 18, "passthrough, exactly-once", 0.0),
    EXACTLY_ONCE_DELAY: Target(0.80, 18, "5 % `delay`, exactly-once", FIVE),
}
README_BEGIN = "<!-- written by make bench: begin -->"
README_END = "<!-- written by make bench: end -->"


def faster_plain(rates: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each source's baseline, round by round: the faster of its two plain loops (never
    the slower one, whichever garbage-collector setting that is in the round)."""
    return {
        src: [max(a, b) for a, b in zip(rates[PLAIN[src]], rates[PLAIN_GC[src]], strict=True)]
        for src in PLAIN
    }


def per_round(rates: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each loop's ratio to its source's baseline in every round: the loops of a round run
    back to back, so the machine's slow spells mostly cancel out."""
    base = faster_plain(rates)
    return {
        name: [v / b for v, b in zip(values, base[SCENARIOS[name].source], strict=True)]
        for name, values in rates.items()
    }


def report(
    args: argparse.Namespace, rates: dict[str, list[float]], delays: list[latency.Latency]
) -> None:
    """Write the full tables to ``args.out`` and the targets' rows to the README's block,
    both from the same rates; the visibility latencies after them."""
    paired = per_round(rates)
    day = time.strftime("%Y-%m-%d")
    for name, ratios in paired.items():
        print(
            f"{name}: median {statistics.median(rates[name]):,.0f} rec/s  ratio "
            f"{pct(statistics.median(ratios), 1)}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tables = results(args, rates, paired, day) + costs(rates)
    tables += f"\n{latency.table(delays)}" if delays else ""
    Path(args.out).write_text(HEADER + tables)
    print(f"\nwrote {args.out}")
    if args.readme:
        readme = Path(args.readme)
        block = summary(args, paired, day, delays)
        readme.write_text(with_summary(readme.read_text(), block))
        print(f"wrote the summary in {args.readme}")


def results(
    args: argparse.Namespace,
    rates: dict[str, list[float]],
    paired: dict[str, list[float]],
    day: str,
) -> str:
    """The command, every loop's ratio with its spread and verdict, and which plain loop
    was the baseline how often."""
    rows = []
    for name, values in rates.items():
        ratios = paired[name]
        rows.append(
            f"| {name} | {SCENARIOS[name].source} | {statistics.median(values):,.0f} "
            f"| {pct(statistics.median(ratios), 1)} | {pct(min(ratios))}–{pct(max(ratios))} "
            f"| {verdict(name, ratios)} |"
        )
    tuned = [
        f"{_rounds_won(rates[PLAIN_GC[src]], rates[PLAIN[src]])} of {args.rounds} ({src})"
        for src in PLAIN
    ]
    return (
        f"## Throughput ratios ({day})\n\n"
        f"Command: `python -m benchmarks.run --records {args.records} --rounds {args.rounds} "
        f"--warmup {args.warmup}` (`make bench` runs the defaults), local single-node Kafka "
        f"from `make up`, {os.cpu_count()} cores, {args.records:,} records a source, "
        f"{PARTITIONS} partitions, {args.rounds} rounds after {args.warmup} unmeasured. The "
        f"plain loop with the bridge's GC setting was the faster in {' and '.join(tuned)} "
        "rounds.\n\n"
        f"| loop | source | median rec/s | ratio to the faster plain loop | per round "
        f"| target (rounds at or above it) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
    )


def verdict(name: str, ratios: list[float]) -> str:
    """``≥ 95 % (#16): met (9 of 11)`` for a loop with a target, else nothing."""
    if name not in TARGETS:
        return ""
    t = TARGETS[name]
    met = "met" if statistics.median(ratios) >= t.want else "not met"
    return f"≥ {pct(t.want)} (#{t.issue}): {met} ({_rounds_met(ratios, t.want)} of {len(ratios)})"


def costs(rates: dict[str, list[float]]) -> str:
    """Microseconds a record, from the median rates: where each source's remaining points
    go, and what a record a fault selects costs beyond one passed through."""
    base = {src: _us(values) for src, values in faster_plain(rates).items()}
    rows = []
    for src in PLAIN:
        rows.append(f"| the faster plain loop | {src} | | {base[src]:.2f} | | | |")
        rows += [
            _cost_row(name, rates, base[src])
            for name, loop in SCENARIOS.items()
            if loop.source == src and name not in (PLAIN[src], PLAIN_GC[src])
        ]
    return (
        "## Where the time goes\n\n"
        "Microseconds a record (1 / median rate) and the differences between rows; a fault "
        "row's extra over the passthrough bridge of its source, divided by the share of "
        "records its faults select, is what one selected record costs beyond passing "
        "through. A ledger file's cost may be paid partly by every record, not only by the "
        "selected ones: in those rows the last column is an upper bound.\n\n"
        "| loop | source | selected | µs a record | over the faster plain loop "
        "| over the passthrough | per selected record |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _cost_row(name: str, rates: dict[str, list[float]], base: float) -> str:
    """One bridge row of the cost table; ``base``: µs a record of the faster plain loop."""
    src = SCENARIOS[name].source
    us, passed = _us(rates[name]), _us(rates[PASSTHROUGH[src]])
    share = TARGETS[name].fraction if name in TARGETS else 0.0
    extra = f"{us - passed:+.2f}" if name != PASSTHROUGH[src] else ""
    selected = f"{(us - passed) / share:+.1f}" if share else ""
    return (
        f"| {name} | {src} | {pct(share, 1) if share else ''} | {us:.2f} | {us - base:+.2f} "
        f"| {extra} | {selected} |"
    )


def _us(rates: list[float]) -> float:
    return 1e6 / statistics.median(rates)


def _rounds_met(ratios: list[float], want: float) -> int:
    return sum(r >= want for r in ratios)


def _rounds_won(rates: list[float], others: list[float]) -> int:
    return sum(a > b for a, b in zip(rates, others, strict=True))


def pct(x: float, digits: int = 0) -> str:
    """A ratio as the reports write it: ``0.962`` → ``96.2 %``."""
    return f"{x * 100:.{digits}f} %"


def summary(
    args: argparse.Namespace,
    paired: dict[str, list[float]],
    day: str,
    delays: Sequence[latency.Latency] = (),
) -> str:
    """The README's performance block: what was run, the targets' rows, and how long a
    record takes to be visible on the shadow in each delivery mode."""
    intro = (
        f"Last run ({day}: {args.records:,} records a source, {args.rounds} rounds after "
        f"{args.warmup} warm-up, {os.cpu_count()} cores shared with the broker). A ratio is "
        "the median over rounds of the loop's rate divided by the faster of two plain loops "
        "in the same round (Python's default GC, and the bridge's GC setting):"
    )
    lines = [_wrap(intro), "", "| loop | ratio | rounds met | target |", "|---|---|---|---|"]
    for name, t in TARGETS.items():
        ratios = paired[name]
        lines.append(
            f"| {t.row} | {pct(statistics.median(ratios), 1)} "
            f"| {_rounds_met(ratios, t.want)} of {len(ratios)} | {pct(t.want)} (#{t.issue}) |"
        )
    if delays:
        seen = "; ".join(f"{d.delivery} p50 {d.p50:.0f} ms, p99 {d.p99:.0f} ms" for d in delays)
        interval = f"{delays[0].commit_interval:g} s"
        text = (
            f"Visibility latency of a live stream ({latency.RATE:,} records/s, "
            f"`read_committed` reader, commit interval {interval}): {seen}."
        )
        lines += ["", _wrap(text)]
    return "\n".join(lines)


def _wrap(text: str) -> str:
    """Lines of 90 characters at most, never broken between a number and its ``%``."""
    kept = text.replace(" %", "\u00a0%")  # textwrap breaks at ASCII whitespace only
    return textwrap.fill(kept, width=90, break_on_hyphens=False).replace("\u00a0", " ")


def with_summary(text: str, block: str) -> str:
    """``text`` with what lies between the README's markers replaced by ``block``."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no {README_BEGIN} … {README_END} block")
    return f"{text[: begin + len(README_BEGIN)]}\n{block}\n{text[end:]}"


HEADER = f"""# Benchmarks

Throughput is measured as a **ratio** to a plain confluent-kafka consume→produce loop
(tuned consumer, the bridge's producer settings, headers passed through, no delivery
bookkeeping) on the same broker, same topic, in the same round. Python's garbage-collector
thresholds move that loop by up to ~40 % (the collector walks every consumed message), so
each round runs it twice: with Python's thresholds, (700, 10, 10), and with the bridge's,
{GC_THRESHOLDS} (`GC_THRESHOLDS`, which `streamchaos run` sets). A loop's ratio in
a round is its rate divided by the **faster** of the two in that round; the tables give the
median over rounds ("per round": the lowest and highest; a target counts as met when the
median reaches it, and "rounds met" in the README counts the rounds at or above it). The
machine is shared and noisy: compare the ratios of one run, not rates across runs. This
file and the README's block are rewritten by `make bench`, from the same run.

There are two source topics, filled once a run, with {PARTITIONS} partitions each and
keyed records carrying the same ten features (strings, a long, four doubles): Avro
(Confluent-framed values of ~{VALUE_BYTES[AVRO]} bytes, one header) and JSON (compact
values of ~{VALUE_BYTES[JSON]} bytes, no headers). Each has its own two plain loops; a row
reading the JSON topic is compared with the faster JSON plain loop of its round. Every
round runs each loop once, back to back, starting with a different loop each time;
unmeasured warm-up rounds (`--warmup`) run every loop first, as a freshly started broker
JVM is slower until its code is compiled. Each loop reads its source from the beginning
with a fresh group; its clock starts at the first consumed record (the group join is
excluded) and stops when its last output is acknowledged.

The bridge runs as `streamchaos run` runs it: the bridge's GC setting and its default
lineage (nothing added to the records: a `lineage` ledger line per run of records says
where they landed). Rows run without a ledger, except those named "ledger file" (a JSONL
file in a temporary directory): among them the passthrough row with the target, where
the lineage lines are written, so every shadow record stays traceable. Each fault selects
its records independently, by record; the three-fault row runs `drift`, `corrupt` and
`delay`, in that order, on one Avro route, each at 10 %, so about 27.1 % of its records
meet at least one fault. "bridge" (no ledger), "bridge, default GC", "bridge, lineage
header on every record" (`bridge.lineage_header: streamchaos-origin`) and the JSON
passthrough have no target: they show what the ledger, the GC setting and the header are
worth, and what a fault row's extra cost is measured from. The "exactly-once" rows run
`delivery: exactly-once`: a transaction per `bridge.commit_interval` (1 s) holding the
shadow records and the source offsets; a loop's clock stops at its last acknowledged
record, before the last transaction's commit, as the other rows stop before their last
offset commit. A loop lasts about half a second here, so it holds at most one periodic
commit: what the commits cost (a producer flush and the commit's round trips, once a
`commit_interval`) is mostly outside these two ratios.

Until issue #16 the bench also ran a plain loop doing the bridge's duties (the lineage
header and a delivery report per record) and two "minimal" 5 % fault loops on top of it,
yardsticks for the bridge's design then; they were removed to keep a run short, and their
last figures are in this file's git history. Runs kept for comparison across commits
(medians of three, before and after a change) are in docs/benchmark-history.md.

"""


if __name__ == "__main__":
    raise SystemExit(main())
