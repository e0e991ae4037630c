"""``streamchaos`` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from streamchaos.config import load_config
from streamchaos.errors import ConfigError, StreamChaosError
from streamchaos.faults.describe import describe_faults

log = logging.getLogger("streamchaos")

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamchaos",
        description="Make ML feature pipelines on Kafka fail on purpose, safely.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    aud.add_argument("--ledger", required=True, help="ledger JSON Lines file")
    aud.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="default: $KAFKA_BOOTSTRAP_SERVERS",
    )
    aud.add_argument("--lineage-header", default="streamchaos-origin")
    aud.add_argument("--experiment", help="only this experiment's ledger entries")
    aud.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole audit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StreamChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    parser.error(f"unknown command {args.command}")
    return EXIT_CONFIG


def _validate(path: str) -> int:
    cfg = load_config(path)
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
    bridge = Bridge(cfg)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        bridge.stop()

    def _on_usr1(signum: int, frame: FrameType | None) -> None:
        bridge.toggle_pause()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGUSR1, _on_usr1)
    return bridge.run(idle_exit=idle_exit)


def _audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamchaos.audit import audit

    if not args.bootstrap_servers:
        raise ConfigError("--bootstrap-servers: required (or set KAFKA_BOOTSTRAP_SERVERS)")
    report = audit(
        args.bootstrap_servers,
        args.source,
        args.shadow,
        Path(args.ledger),
        lineage_header=args.lineage_header,
        experiment=args.experiment,
        timeout=args.timeout,
    )
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_RUNTIME
