"""``streamchaos watch``: run the reference detector on a topic until stopped (SIGTERM,
SIGINT), ``--duration`` or ``--idle-exit``."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from streamchaos.cli.common import kafka_args, need


def register(sub: Any) -> None:
    p = sub.add_parser("watch", help="reference detector: KS drift and data-quality checks")
    p.add_argument("--topic", required=True)
    p.add_argument("--format", choices=["avro", "json"], default="avro")
    p.add_argument("--alerts", help="append alerts to this JSON Lines file")
    p.add_argument("--alerts-topic", help="produce alerts to this topic")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus gauges on this port")
    p.add_argument("--metrics-bind", default="127.0.0.1")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--idle-exit", type=float, help="stop after this many idle seconds")
    p.add_argument("--reference", type=int, default=1000, help="records in the reference")
    p.add_argument("--window", type=int, default=500, help="records in the sliding window")
    p.add_argument("--alpha", type=float, default=1e-4, help="KS significance level")
    p.add_argument("--features", help="comma-separated numeric features (default: all)")
    kafka_args(p)
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from streamchaos.evaluation.watch import WatchSettings
    from streamchaos.evaluation.watch_runner import Watcher, WatchOptions

    opts = WatchOptions(
        bootstrap=need(args.bootstrap_servers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"),
        topic=args.topic,
        format=args.format,
        registry_url=args.schema_registry if args.format == "avro" else None,
        alerts_path=Path(args.alerts) if args.alerts else None,
        alerts_topic=args.alerts_topic,
        metrics_bind=args.metrics_bind,
        metrics_port=args.metrics_port,
        duration=args.duration,
        idle_exit=args.idle_exit,
    )
    if args.format == "avro":
        need(args.schema_registry, "--schema-registry", "SCHEMA_REGISTRY_URL")
    settings = WatchSettings(
        reference=args.reference,
        window=args.window,
        alpha=args.alpha,
        numeric=args.features.split(",") if args.features else None,
    )
    watcher = Watcher(opts, settings)
    signal.signal(signal.SIGTERM, lambda s, f: watcher.stop())
    signal.signal(signal.SIGINT, lambda s, f: watcher.stop())
    return watcher.run()
