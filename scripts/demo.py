"""`make demo`: synthetic payments → bridge with five fault episodes → reference detector
on the shadow → audit and scorecard; then a small sweep (3 severities × 2 fractions of a
drift) against the same detector, with its recall curve. Runs on the stack `make up`
started."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

from streamchaos.bridge import Bridge
from streamchaos.cli.synth import produce_with_progress
from streamchaos.config import load_config
from streamchaos.evaluation.audit import audit
from streamchaos.evaluation.scorer import save_scorecard, score_run
from streamchaos.evaluation.sweep_report import records_seen, write_outputs
from streamchaos.evaluation.sweep_report import report as sweep_report
from streamchaos.evaluation.synth import produce_synthetic
from streamchaos.evaluation.timeline import write_timeline
from streamchaos.evaluation.watch import WatchSettings
from streamchaos.evaluation.watch_runner import Watcher, WatchOptions
from streamchaos.kafkatools import create_topics, delete_topics, unique_name
from streamchaos.sweep import SweepGrid, run_sweep, score_sweep

WATCH_GROUP = unique_name("demo-watch")  # the sweep's detector goes on where the first stopped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--seconds",
        type=float,
        default=185.0,
        help="traffic duration (the faults end at 115 s: the rest is clean time for the FAR)",
    )
    parser.add_argument("--rate", type=float, default=800.0, help="records per second")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--out", default="out", help="folder for the outputs")
    args = parser.parse_args()
    out = Path(args.out)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(args.config)
    cfg = cfg.model_copy(
        update={"ledger": cfg.ledger.model_copy(update={"path": out / "demo-ledger.jsonl"})}
    )
    route = cfg.routes[0]
    bootstrap, registry = cfg.kafka.bootstrap_servers, cfg.schema_registry.url
    assert registry is not None
    out.mkdir(parents=True, exist_ok=True)
    for f in ("demo-ledger.jsonl", "demo-alerts.jsonl"):
        (out / f).unlink(missing_ok=True)
    delete_topics(bootstrap, [route.source, route.shadow])
    time.sleep(1)
    create_topics(bootstrap, [route.source], 3, exist_ok=True)

    bridge = Bridge(cfg)
    watcher = Watcher(
        WatchOptions(
            bootstrap,
            route.shadow,
            registry_url=registry,
            alerts_path=out / "demo-alerts.jsonl",
            idle_exit=15,
            group=WATCH_GROUP,
        ),
        WatchSettings(),
    )
    codes: dict[str, int] = {}
    threads = [
        threading.Thread(target=lambda: codes.update(bridge=bridge.run(idle_exit=10)), daemon=True),
        threading.Thread(target=lambda: codes.update(watch=watcher.run()), daemon=True),
    ]
    for t in threads:
        t.start()
    print(
        f"producing synthetic payments for {args.seconds:.0f}s at {args.rate:.0f}/s; "
        "faults follow configs/demo.yaml ...",
        flush=True,
    )
    synth = produce_with_progress(
        bootstrap, registry, route.source, duration=args.seconds, rate=args.rate, seed=7
    )
    print(f"produced {synth.produced} records to {route.source}", file=sys.stderr)
    traffic_end = time.time()
    for t in threads:
        t.join(120)
    if not synth.ok or codes != {"bridge": 0, "watch": 0}:
        print(f"demo failed: synth {synth}, bridge and watch {codes}", file=sys.stderr)
        return 1
    report = audit(bootstrap, route.source, route.shadow, out / "demo-ledger.jsonl")
    print("\n" + report.summary() + "\n")
    card, alerts = score_run(
        out / "demo-ledger.jsonl",
        alerts=out / "demo-alerts.jsonl",
        max_delay=10,
        run_start=bridge.started_at,
        run_end=traffic_end,
    )
    print(card.table())
    save_scorecard(card, out / "scorecard.json")
    write_timeline(card, alerts, out / "timeline.png")
    print(
        f"\noutputs in {out.resolve()}: demo-ledger.jsonl (ground truth), "
        "demo-alerts.jsonl (detector), scorecard.json, timeline.png"
    )
    swept = small_sweep(args, out, bootstrap, registry, route.source, route.shadow)
    return 0 if report.ok and swept else 1


def small_sweep(
    args: argparse.Namespace, out: Path, bootstrap: str, registry: str, source: str, shadow: str
) -> bool:
    """How small a drift of `amount` does the reference detector catch? One repeat of
    3 severities × 2 fractions, 5 s episodes after 6 s clean gaps, on fresh traffic. Each
    cell is a fresh drift: its warm-up (records it picks per partition) comes out of the
    episode, so it is small here."""
    grid = SweepGrid(
        experiment=args.config,
        fault={
            "type": "drift",
            "warmup": 30,
            "features": {"amount": {"shift": "{severity}", "unit": "sigma"}},
        },
        severity=[0.5, 1, 2],
        fraction=[0.3, 1.0],
        repeats=1,
        episode=5,
        gap=6,
        max_delay=4,
        alerts={"file": str(out / "sweep-alerts.jsonl")},
        out=str(out / "sweep"),
    )
    (out / "sweep-alerts.jsonl").unlink(missing_ok=True)
    seconds = grid.duration + grid.max_delay + 10
    watcher = Watcher(
        WatchOptions(
            bootstrap, shadow, registry_url=registry, alerts_path=out / "sweep-alerts.jsonl",
            duration=seconds + 10, group=WATCH_GROUP,
        ),
        WatchSettings(),
    )  # fmt: skip
    traffic = threading.Thread(
        target=produce_synthetic,
        args=(bootstrap, registry, source),
        kwargs={"duration": seconds, "rate": args.rate, "seed": 8},
        daemon=True,
    )
    print(f"\nsweep: 6 cells of a drift of amount, {grid.duration:.0f} s ...", flush=True)
    detector = threading.Thread(target=watcher.run, daemon=True)
    detector.start()
    traffic.start()
    run = run_sweep(grid)
    watcher.stop()
    for t in (detector, traffic):
        t.join(60)
    rep = sweep_report(run.cells, score_sweep(run), grid.recall_target, records_seen(run.ledger))
    print(rep.table())
    written = write_outputs(rep, Path(grid.out))
    print(f"sweep outputs: {', '.join(str(p) for p in written)}")
    return True


if __name__ == "__main__":
    sys.exit(main())
