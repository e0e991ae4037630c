"""``streamchaos`` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from streamchaos.config import load_config
from streamchaos.errors import ConfigError, StreamChaosError

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

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return bridge.run(idle_exit=idle_exit)
