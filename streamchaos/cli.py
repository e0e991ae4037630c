"""``streamchaos`` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from streamchaos.config import load_config
from streamchaos.errors import BridgeError, ConfigError, StreamChaosError
from streamchaos.faults.describe import describe_faults
from streamchaos.lineage import LINEAGE_HEADER
from streamchaos.logs import setup as setup_logging

log = logging.getLogger("streamchaos")

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser; also how code builds a command's options (e.g. ``score``)."""
    parser = argparse.ArgumentParser(
        prog="streamchaos",
        description="Make ML feature pipelines on Kafka fail on purpose, safely.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("STREAMCHAOS_LOG_FORMAT", "text"),
        help="json: one JSON object per line (default: $STREAMCHAOS_LOG_FORMAT or text)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bridge service")
    run.add_argument("-c", "--config", required=True, help="experiment YAML file")
    run.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop cleanly (flush, commit) after this many seconds with no input",
    )
    validate = sub.add_parser("validate", help="load and check a config file")
    validate.add_argument("-c", "--config", required=True, help="experiment YAML file")
    sub.add_parser("faults", help="list every fault type with its parameters and defaults")
    aud = sub.add_parser("audit", help="reconcile a source topic, its shadow and the ledger")
    aud.add_argument("--source", required=True, help="source topic")
    aud.add_argument("--shadow", required=True, help="shadow topic")
    _ledger_args(aud)
    _kafka_args(aud, registry=False)
    aud.add_argument("--lineage-header", default=LINEAGE_HEADER)
    aud.add_argument("--experiment", help="only this experiment's ledger entries")
    aud.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole audit")
    _synth_parser(sub)
    _watch_parser(sub)
    _score_parser(sub)
    return parser


def _ledger_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--ledger", help="ledger JSON Lines file")
    where.add_argument(
        "--ledger-topic", help="ledger Kafka topic (the bridge's ledger.topic; needs a broker)"
    )


def _kafka_args(p: argparse.ArgumentParser, registry: bool = True) -> None:
    p.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="default: $KAFKA_BOOTSTRAP_SERVERS",
    )
    if registry:
        p.add_argument(
            "--schema-registry",
            default=os.environ.get("SCHEMA_REGISTRY_URL"),
            help="default: $SCHEMA_REGISTRY_URL",
        )


def _synth_parser(sub: Any) -> None:
    p = sub.add_parser("synth", help="produce synthetic feature records (Avro) to a topic")
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, help="records to produce")
    p.add_argument("--duration", type=float, help="seconds to produce for")
    p.add_argument("--rate", type=float, help="records per second (default: as fast as possible)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    _kafka_args(p)


def _watch_parser(sub: Any) -> None:
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
    _kafka_args(p)


def _score_parser(sub: Any) -> None:
    p = sub.add_parser("score", help="score detector alerts against the ledger's episodes")
    _ledger_args(p)
    p.add_argument("--alerts", help="alerts JSON Lines file")
    p.add_argument("--alerts-topic", help="alerts Kafka topic (JSON values)")
    p.add_argument("--prometheus", help="Prometheus URL: read ALERTS over the run")
    p.add_argument("--step", type=float, default=5.0, help="Prometheus query step (s)")
    p.add_argument(
        "--max-delay",
        type=float,
        default=60.0,
        help="D: seconds after an episode's end an alert still counts",
    )
    p.add_argument("--early", type=float, default=0.0, help="ε: tolerance before a start")
    p.add_argument("--warmup", type=float, default=0.0, help="ignore alerts this early")
    p.add_argument(
        "--run-start",
        type=float,
        help="epoch seconds the run began (false-alarm "
        "time counts from here; default: the first window or alert)",
    )
    p.add_argument("--run-end", type=float, help="epoch seconds the run ended")
    p.add_argument("--experiment", help="only this experiment's episodes")
    p.add_argument("--fault", action="append", help="only these faults (name or type)")
    p.add_argument("--json", help="write the scorecard as JSON here")
    p.add_argument("--png", help="write the timeline picture here (needs matplotlib)")
    _kafka_args(p, registry=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    try:
        if args.command == "validate":
            return _validate(args.config)
        if args.command == "run":
            return _run(args.config, args.idle_exit)
        if args.command == "faults":
            print(describe_faults())
            return EXIT_OK
        if args.command == "audit":
            return _audit(args)
        if args.command == "synth":
            return _synth(args)
        if args.command == "watch":
            return _watch(args)
        if args.command == "score":
            from streamchaos.score_cli import run_score

            run_score(args)
            return EXIT_OK
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StreamChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    raise AssertionError(f"unhandled command {args.command}")  # argparse allows no other


def _validate(path: str) -> int:
    from streamchaos.kafkaconf import registry_conf, security_conf

    cfg = load_config(path)
    security_conf(cfg)  # secrets must resolve (their values are never printed)
    registry_conf(cfg)
    print(
        f"{path}: ok — experiment {cfg.experiment!r}, {len(cfg.routes)} route(s): "
        + ", ".join(f"{r.source} -> {r.shadow}" for r in cfg.routes)
    )
    return EXIT_OK


def _run(path: str, idle_exit: float | None) -> int:
    from streamchaos.bridge import Bridge  # Kafka imports only where needed

    if idle_exit is not None and idle_exit <= 0:
        raise ConfigError("--idle-exit: must be a positive number of seconds")
    cfg = load_config(path)
    bridge = Bridge(cfg, tune_gc=True)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        bridge.stop(wait=False)

    def _on_usr1(signum: int, frame: FrameType | None) -> None:
        bridge.toggle_pause()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGUSR1, _on_usr1)
    return bridge.run(idle_exit=idle_exit)


def _audit(args: argparse.Namespace) -> int:
    from streamchaos.audit import audit

    if not args.bootstrap_servers:
        raise ConfigError("--bootstrap-servers: required (or set KAFKA_BOOTSTRAP_SERVERS)")
    deadline = time.monotonic() + args.timeout  # --timeout bounds the whole audit
    entries = load_ledger(args, args.timeout)
    report = audit(
        args.bootstrap_servers,
        args.source,
        args.shadow,
        entries,
        lineage_header=args.lineage_header,
        experiment=args.experiment,
        timeout=max(1.0, deadline - time.monotonic()),
    )
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_RUNTIME


def load_ledger(args: argparse.Namespace, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The entries of ``--ledger FILE`` or of ``--ledger-topic T`` (only ``--experiment``'s
    records of a topic, when given); a topic that does not exist is a usage error."""
    from pathlib import Path

    from streamchaos.audit import read_ledger, read_ledger_topic

    if args.ledger:
        return read_ledger(Path(args.ledger))
    if not args.bootstrap_servers:
        raise ConfigError("--bootstrap-servers: required with --ledger-topic")
    try:
        return read_ledger_topic(
            args.bootstrap_servers, args.ledger_topic, timeout, args.experiment
        )
    except BridgeError as exc:
        raise ConfigError(f"--ledger-topic: {exc}") from exc


def _need(value: str | None, flag: str, env: str) -> str:
    if not value:
        raise ConfigError(f"{flag}: required (or set {env})")
    return value


def _synth(args: argparse.Namespace) -> int:
    from streamchaos.synth_cli import run_synth

    if args.count is None and args.duration is None:
        raise ConfigError("--count or --duration: give one")
    return run_synth(
        args,
        _need(args.bootstrap_servers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"),
        _need(args.schema_registry, "--schema-registry", "SCHEMA_REGISTRY_URL"),
    )


def _watch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamchaos.watch import WatchSettings
    from streamchaos.watch_runner import Watcher, WatchOptions

    opts = WatchOptions(
        bootstrap=_need(args.bootstrap_servers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS"),
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
        _need(args.schema_registry, "--schema-registry", "SCHEMA_REGISTRY_URL")
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
