"""Throughput of the bridge as a ratio to a plain confluent-kafka passthrough, same run.

Both read the same pre-filled source topic (3 partitions, keyed records with ~130-byte
Confluent-framed Avro values and one header) from the beginning with a fresh group and
write to a shadow topic. The bridge runs as ``streamchaos run`` runs it (garbage
collector thresholds raised); one more plain loop gets that setting too. The clock
starts at the first consumed record (the group join is excluded) and stops when the last
output is acknowledged. Runs alternate between the loops to spread the machine's noise;
medians are reported.
Usage: ``make bench`` or ``python -m benchmarks.run [--records N] [--rounds R] [--warmup W]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import tempfile
import textwrap
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from streamchaos.bridge import Bridge
from streamchaos.bridge.runner import GC_THRESHOLDS, fewer_collections
from streamchaos.codec import AvroCodec, ParsedSchema, Registry, frame
from streamchaos.config import LINEAGE_HEADER, config_from_dict
from streamchaos.kafkaconf import PRODUCER_DEFAULTS
from streamchaos.kafkatools import create_topics, delete_topics, produce_all, unique_name

PARTITIONS = 3
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


def records(topic: str, n: int, schema_id: int) -> Any:
    """Confluent-framed Avro feature records (~130-byte values) with one header."""
    local = ParsedSchema.of(SCHEMA)
    codec = AvroCodec(None, local)
    for i in range(n):
        value = {
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
        yield {
            "topic": topic,
            "key": b"user-%d" % (i % 5000),
            "value": frame(schema_id, codec.encode(value, local, None)),
            "partition": i % PARTITIONS,
            "headers": [("trace", b"t-%d" % i)],
        }


def register(url: str, topic: str) -> int:
    return Registry(url).register(f"{topic}-value", SCHEMA)


def plain_passthrough(
    bootstrap: str,
    source: str,
    shadow: str,
    n: int,
    tune_gc: bool = False,
    duties: bool = False,
) -> float:
    """The baseline: a tuned consume→produce loop with no bookkeeping at all (and, with
    ``tune_gc``, the garbage-collector setting the bridge's CLI uses). ``duties``: a loop
    that also does the two things every shadow record requires, and nothing else — add
    the lineage header, and take a delivery report per record (what commits wait for)."""
    with fewer_collections(tune_gc):
        return (_duties if duties else _plain)(bootstrap, source, shadow, n)


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


def _finish(
    loop: str,
    consumer: Consumer,
    producer: Producer,
    n: int,
    count: int,
    start: float | None,
    acked: list[int] | None = None,
) -> float:
    """Wait for every delivery; the rate, once every record was read (and acknowledged,
    when ``acked`` counts the reports): a deadline-ended loop reports no rate."""
    producer.flush(60)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    if count < n:
        raise RuntimeError(f"{loop} loop: {count} of {n} records in 300 s")
    if acked is not None and acked[0] != count:
        raise RuntimeError(f"{loop} loop: {acked[0]} delivery reports for {count} records")
    return n / elapsed


def _drive(
    consumer: Consumer,
    producer: Producer,
    n: int,
    handle: Callable[[list[Any]], None],
    pending: Callable[[], bool] = lambda: False,
) -> tuple[int, float | None]:
    """The loops' skeleton: consume batches until ``n`` records were read (and nothing is
    ``pending``), 300 s at most, handing each batch to ``handle`` and serving delivery
    reports after it; returns (records read, the clock at the first one)."""
    count, start = 0, None
    deadline = time.monotonic() + 300
    while (count < n or pending()) and time.monotonic() < deadline:
        msgs: list[Any] = consumer.consume(1000, 0.005)
        if msgs and start is None:
            start = time.perf_counter()
        handle(msgs)
        count += len(msgs)
        producer.poll(0)
    return count, start


def _plain(bootstrap: str, source: str, shadow: str, n: int) -> float:
    consumer, producer = _clients(bootstrap, source)

    def handle(msgs: list[Any]) -> None:
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

    count, start = _drive(consumer, producer, n, handle)
    return _finish("plain", consumer, producer, n, count, start)


def _duties(bootstrap: str, source: str, shadow: str, n: int) -> float:
    consumer, producer = _clients(bootstrap, source)
    acked = [0]

    def delivered(err: Any, msg: Any) -> None:
        acked[0] += 1

    prefix = f"{source}/".encode()

    def handle(msgs: list[Any]) -> None:
        for msg in msgs:
            ts_type, ts = msg.timestamp()
            headers = msg.headers()
            part = msg.partition()
            origin = (LINEAGE_HEADER, prefix + b"%d/%d" % (part, msg.offset()))
            headers = [*headers, origin] if headers else [origin]
            producer.produce(
                shadow,
                msg.value(),
                msg.key(),
                part,
                delivered,
                None,
                ts if ts_type else 0,
                headers,
            )

    count, start = _drive(consumer, producer, n, handle)
    return _finish("duties", consumer, producer, n, count, start, acked)


MINIMAL_HOLD = "minimal: duties loop + 5% held 20 ms"
MINIMAL_NAN = "minimal: duties loop + NaN in 5%"
MINIMAL_EVERY = 20  # the minimal fault loops take 1 record in 20 (5 %), by offset
MINIMAL_DELAY = 0.020
NAN = struct.pack("<d", float("nan"))


def minimal_fault_loop(bootstrap: str, source: str, shadow: str, n: int, fault: str) -> float:
    """A minimal 5 % fault on top of the duties loop (GC tuned), next to the bridge's
    fault rows: 1 record in 20 is held 20 ms in a queue (``delay``), or gets
    NaN written over its ``amount`` (``corrupt``: the bench schema puts it right after the
    ``user`` string), and its delivery report keeps its source and shadow offsets, as a
    ledger line needs. No engine, config, schema lookup or metrics: a yardstick, not a
    design."""
    with fewer_collections(True):
        return _minimal(bootstrap, source, shadow, n, fault)


def _minimal(bootstrap: str, source: str, shadow: str, n: int, fault: str) -> float:
    consumer, producer = _clients(bootstrap, source)
    acked, lines = [0], []

    def delivered(err: Any, msg: Any) -> None:
        acked[0] += 1

    def injected(source_offset: int, err: Any, msg: Any) -> None:
        lines.append((source_offset, msg.partition(), msg.offset()))
        acked[0] += 1

    held: deque[tuple[float, Any]] = deque()
    prefix = f"{source}/".encode()
    selected = [0]

    def handle(msgs: list[Any]) -> None:
        now = time.monotonic()
        while held and held[0][0] <= now:
            msg = held.popleft()[1]
            offset, part = msg.offset(), msg.partition()
            ts_type, ts = msg.timestamp()
            origin = (LINEAGE_HEADER, prefix + b"%d/%d" % (part, offset))
            producer.produce(
                shadow,
                msg.value(),
                msg.key(),
                part,
                partial(injected, offset),
                None,
                ts if ts_type else 0,
                [*(msg.headers() or ()), origin],
            )
        due = now + MINIMAL_DELAY  # for what this batch holds
        for msg in msgs:
            offset = msg.offset()
            callback = delivered
            value = msg.value()
            if offset % MINIMAL_EVERY == 7:
                selected[0] += 1
                if fault == "delay":
                    held.append((due, msg))
                    continue
                at = 6 + (value[5] >> 1)  # framing, then the user string: one-byte length
                value = value[:at] + NAN + value[at + 8 :]
                callback = partial(injected, offset)
            ts_type, ts = msg.timestamp()
            headers = msg.headers()
            part = msg.partition()
            origin = (LINEAGE_HEADER, prefix + b"%d/%d" % (part, offset))
            headers = [*headers, origin] if headers else [origin]
            producer.produce(
                shadow, value, msg.key(), part, callback, None, ts if ts_type else 0, headers
            )

    count, start = _drive(consumer, producer, n, handle, pending=lambda: bool(held))
    rate = _finish("minimal", consumer, producer, n, count, start, acked)
    if held or len(lines) != selected[0]:
        raise RuntimeError(
            f"minimal loop: {len(held)} held, {len(lines)} of {selected[0]} ledgered"
        )
    return rate


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

    def _tail(self) -> None:
        """Once every record was read, flush as the plain loop does at its end: without
        success reports (no ledger), the flush is what tells the bridge its records landed."""
        if self.last is None and sum(s.consumed for s in self._routes.values()) >= self.target:
            self._land(60)

    def _batch_complete(self, batch: Any) -> None:
        super()._batch_complete(batch)
        if self.last is None and sum(s.produced for s in self._routes.values()) >= self.target:
            self.last = time.perf_counter()
            self.stop()


def bridge_passthrough(
    bootstrap: str,
    source: str,
    shadow: str,
    n: int,
    extra: dict[str, Any] | None = None,
    bridge: dict[str, Any] | None = None,
    ledger: bool = False,
    tune_gc: bool = True,
) -> float:
    """The bridge in the foreground, as the CLI runs it (``tune_gc``), timed from its first
    consumed to its Nth acknowledged record; ``ledger``: ground truth to a JSONL file."""
    raw: dict[str, Any] = {
        "experiment": "bench",
        "kafka": {"bootstrap_servers": bootstrap, "group_id": unique_name("bridge")},
        "routes": [{"source": source, "shadow": shadow, **(extra or {})}],
        "metrics": {"enabled": False},
        "bridge": bridge or {},
        "schema_registry": {"url": os.environ.get("SCHEMA_REGISTRY_URL")},
    }
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


DRIFT5 = {
    "type": "drift",
    "features": {f: {"shift": 3.0} for f in ("amount", "count", "f1", "f2", "f3")},
}

FIVE, TEN = 0.05, 0.10  # the fault rows' fractions (their targets' µs figures use them)
DELAY5 = {"faults": [{"type": "delay", "fraction": FIVE, "delay": "20ms"}]}
CORRUPT5 = {"type": "corrupt", "fraction": FIVE, "mode": "nan", "fields": ["amount"]}

SCENARIOS: dict[str, Callable[..., float]] = {
    "plain": plain_passthrough,
    "plain, GC tuned like the bridge": partial(plain_passthrough, tune_gc=True),
    "plain + the bridge's duties, GC tuned": partial(plain_passthrough, tune_gc=True, duties=True),
    MINIMAL_HOLD: partial(minimal_fault_loop, fault="delay"),
    MINIMAL_NAN: partial(minimal_fault_loop, fault="corrupt"),
    "bridge": bridge_passthrough,
    "bridge, default GC": partial(bridge_passthrough, tune_gc=False),
    "bridge, no lineage header": partial(bridge_passthrough, bridge={"lineage_header": None}),
    "bridge + delay 5% (20 ms)": partial(bridge_passthrough, extra=DELAY5),
    "bridge + delay 5% (20 ms), ledger file": partial(
        bridge_passthrough, extra=DELAY5, ledger=True
    ),
    "bridge + drift 5% (5 numeric features)": partial(
        bridge_passthrough, extra={"format": "avro", "faults": [DRIFT5 | {"fraction": FIVE}]}
    ),
    "bridge + drift 10% (5 numeric features)": partial(
        bridge_passthrough, extra={"format": "avro", "faults": [DRIFT5 | {"fraction": TEN}]}
    ),
    "bridge + corrupt 5% (nan, 1 double)": partial(
        bridge_passthrough, extra={"format": "avro", "faults": [CORRUPT5]}
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=len(SCENARIOS),
        help="measured rounds; the default lets every loop start one round",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured rounds first (broker JIT, caches)"
    )
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--readme", default="README.md", help="'' leaves it alone")
    args = parser.parse_args()
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    source = unique_name("bench")
    shadow = source + ".shadow"
    create_topics(bootstrap, [source, shadow], PARTITIONS)
    try:
        schema_id = register(os.environ["SCHEMA_REGISTRY_URL"], source)
        produce_all(bootstrap, records(source, args.records, schema_id), timeout=300)
        names = list(SCENARIOS)
        for w in range(args.warmup):  # a fresh broker JVM runs its first rounds slower
            for name in names:
                SCENARIOS[name](bootstrap, source, shadow, args.records)
            print(f"warm-up round {w + 1} done", flush=True)
        rates: dict[str, list[float]] = {name: [] for name in SCENARIOS}
        for r in range(args.rounds):
            shift = r % len(names)  # each round starts with another loop: no fixed position
            for name in names[shift:] + names[:shift]:
                rates[name].append(SCENARIOS[name](bootstrap, source, shadow, args.records))
            print(
                f"round {r + 1}: "
                + "  ".join(f"{name} {values[-1]:,.0f}/s" for name, values in rates.items()),
                flush=True,
            )
    finally:
        delete_topics(bootstrap, [source, shadow])
    report(args, rates)
    return 0


@dataclass(frozen=True)
class Target:
    """What an issue asks of one loop, as a ratio to the plain loop."""

    want: float
    issue: int
    row: str  # the loop's name in the README's summary
    fraction: float = 0.0  # the share of records its fault selects


TARGETS = {
    "bridge": Target(0.95, 2, "bridge (lineage header on)"),
    "bridge + delay 5% (20 ms)": Target(0.90, 3, "5 % `delay`", FIVE),
    "bridge + corrupt 5% (nan, 1 double)": Target(0.85, 4, "5 % `corrupt` (one double)", FIVE),
    "bridge + drift 5% (5 numeric features)": Target(
        0.85, 5, "5 % `drift` (5 numeric features)", FIVE
    ),
    "bridge + drift 10% (5 numeric features)": Target(
        0.75, 5, "10 % `drift` (5 numeric features)", TEN
    ),
}
BASES = ["plain", "plain, GC tuned like the bridge", "plain + the bridge's duties, GC tuned"]
README_BEGIN = "<!-- written by make bench: begin -->"
README_END = "<!-- written by make bench: end -->"


def report(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    """Each ratio is the median over rounds of a loop's rate divided by its base loop's
    rate in the same round (the loops of a round run back to back, so slow spells of the
    machine cancel out); "per round" is the spread of the ratio to the plain loop. The
    same numbers go to ``args.out`` in full and to the README's summary block."""
    paired = {
        name: [[v / b for v, b in zip(values, rates[base], strict=True)] for base in BASES]
        for name, values in rates.items()
    }
    ratios = {name: [statistics.median(p) for p in pairs] for name, pairs in paired.items()}
    rows = []
    for name, values in rates.items():
        target = ""
        if name in TARGETS:
            t = TARGETS[name]
            verdicts = ["met" if ratio >= t.want else "not met" for ratio in ratios[name][:2]]
            target = (
                f"≥ {t.want:.0%} (#{t.issue}): {verdicts[0]} / {verdicts[1]}; "
                f"vs plain in {_rounds_met(paired[name][0], t.want)} of {len(values)} rounds"
            )
        median = statistics.median(values)
        r, first = ratios[name], paired[name][0]
        rows.append(
            f"| {name} | {median:,.0f} | {r[0]:.1%} | {min(first):.0%}-{max(first):.0%} "
            f"| {r[1]:.1%} | {r[2]:.1%} | {target} |"
        )
        print(f"{name}: median {median:,.0f} rec/s  ratio {r[0]:.1%}  {target}")
    table = "\n".join(rows)
    day = time.strftime("%Y-%m-%d")
    section = (
        f"## Throughput ratios ({day})\n\n"
        f"Command: `make bench` (`python -m benchmarks.run --records {args.records} "
        f"--rounds {args.rounds} --warmup {args.warmup}`), local single-node Kafka from "
        f"`make up`, {os.cpu_count()} cores, {args.records:,} keyed records (Confluent-framed "
        f"Avro values of ~130 bytes, one header), {PARTITIONS} partitions, {args.rounds} "
        f"rounds after {args.warmup} unmeasured.\n\n"
        "| loop | median rec/s | ratio to plain | per round | ratio to plain, GC tuned "
        "| ratio to plain + duties, GC tuned | target: vs plain / vs plain, GC tuned |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{table}\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(HEADER + section)
    print(f"\nwrote {args.out}")
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(
            with_summary(readme.read_text(), summary(args, rates, paired, ratios, day))
        )
        print(f"wrote the summary in {args.readme}")


def _rounds_met(ratios: list[float], want: float) -> int:
    return sum(r >= want for r in ratios)


def pct(x: float, digits: int = 0) -> str:
    """A ratio as the README writes it: ``0.962`` → ``96.2 %``."""
    return f"{x * 100:.{digits}f} %"


def summary(
    args: argparse.Namespace,
    rates: dict[str, list[float]],
    paired: dict[str, list[list[float]]],
    ratio: dict[str, list[float]],
    day: str,
) -> str:
    """The README's performance summary: the targets' rows and what explains them
    (``paired``: per-round ratios to each base loop; ``ratio``: their medians)."""
    rounds = len(rates["plain"])
    lines = [
        _wrap(
            f"Last run ({day}, `make bench`: {os.cpu_count()} cores shared with the broker, "
            f"{args.records:,} records with ~130-byte Avro values, {rounds} rounds):"
        ),
        "",
        "| loop | ratio to the plain loop | rounds met | to a plain loop with the bridge's "
        "GC setting | target |",
        "|---|---|---|---|---|",
    ]
    for name, t in TARGETS.items():
        r, met = ratio[name], _rounds_met(paired[name][0], t.want)
        lines.append(
            f"| {t.row} | {pct(r[0], 1)} | {met} of {rounds} | {pct(r[1])} | {pct(t.want)} |"
        )
    bridge = statistics.median(rates["bridge"])
    extra = [  # µs a selected record adds, from the median rates
        (1 / statistics.median(rates[name]) - 1 / bridge) / t.fraction * 1e6
        for name, t in TARGETS.items()
        if t.fraction
    ]
    delay, ledger = "bridge + delay 5% (20 ms)", "bridge + delay 5% (20 ms), ledger file"
    spread = paired["bridge"][0]
    prose = (
        f"With Python's default garbage-collector thresholds the bridge reached "
        f"{pct(ratio['bridge, default GC'][0])} of the plain loop. A plain loop given the "
        f"bridge's setting ran {pct(ratio[BASES[1]][0] - 1)} faster; that loop adding the "
        f"lineage header and taking a delivery report per record reached "
        f"{pct(ratio[BASES[2]][0])} of the plain loop, and the bridge "
        f"{pct(ratio['bridge'][2])} of that loop. Between rounds, the bridge's ratio went "
        f"from {pct(min(spread))} to {pct(max(spread))}. Every record a fault selected cost "
        f"{min(extra):.0f}–{max(extra):.0f} µs more than a passed-through one "
        f"({1e6 / bridge:.1f} µs). Writing the ledger to a file (which turns a delivery "
        f"report per record back on) cost another "
        f"{(ratio[delay][0] - ratio[ledger][0]) * 100:.0f} points at 5 % `delay`. "
        f"A minimal loop with the same duties and no engine that holds 1 record in 20 "
        f"for 20 ms reached {pct(ratio[MINIMAL_HOLD][0])} of the "
        f"plain loop ({_rounds_met(paired[MINIMAL_HOLD][0], TARGETS[delay].want)} of {rounds} "
        f"rounds at or above the `delay` target); writing NaN into 1 record in 20, "
        f"{pct(ratio[MINIMAL_NAN][0])}."
    )
    return "\n".join([*lines, "", _wrap(prose)])


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
bookkeeping) on the same broker, same topic, in the same run. The machine is shared and
noisy: compare ratios, not absolute numbers. Each ratio is the median over rounds of the
loop's rate divided by its base loop's rate in the same round; every round runs each loop
once, back to back, starting with a different loop each time. Unmeasured warm-up rounds
(`--warmup`, in the command below) run every loop first: a freshly started broker JVM is
slower until its code is compiled. This file is rewritten by `make bench`.

The bridge runs as `streamchaos run` runs it: with Python's garbage-collector thresholds
raised to {GC_THRESHOLDS} instead of (700, 10, 10) (`GC_THRESHOLDS` in
`streamchaos/bridge/runner.py`); the row "bridge, default GC" runs it with Python's
defaults instead. The row "plain, GC tuned like the bridge" gives the plain loop the
bridge's setting, and each target is judged against both loops, and round by round
against the plain loop ("per round": the lowest and highest ratio to it). The row "plain +
the bridge's duties, GC tuned" is that loop doing, besides, the two things every shadow
record requires when the bridge keeps a ledger: it adds the lineage header
(`streamchaos-origin: topic/partition/offset`) and asks for a delivery report per record
(what the bridge's commits then wait for, and where ledger lines get shadow offsets). It
tracks and commits no offsets itself, so it is a yardstick for the bridge's own code, not a
bound. The bridge rows run without a ledger (except the one named so): the bridge then
asks the client for reports of failed deliveries only and flushes its producer before each
commit (every second by default), which is how it comes out above that loop.

The two "minimal" rows are that loop doing, besides, a 5 % fault in the fewest steps: 1
record in 20 (by offset) is held 20 ms in a queue, or gets NaN written over a double at
the offset the bench schema puts it, and its delivery report keeps its source and shadow
offsets, as a ledger line needs. No engine, config, schema lookup or metrics: what a
minimal Python loop with the same duties reached, not what any design must cost.

"""


if __name__ == "__main__":
    raise SystemExit(main())
