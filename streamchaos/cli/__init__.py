"""``streamchaos`` command line: one module per command; each parses its flags, calls the
library and prints. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from streamchaos.cli import audit, ctl, faults, run, score, sweep, synth, validate, watch
from streamchaos.cli.common import EXIT_CONFIG, EXIT_RUNTIME
from streamchaos.errors import ConfigError, StreamChaosError
from streamchaos.logs import setup as setup_logging

COMMANDS = (run, ctl, validate, faults, audit, synth, watch, score, sweep)  # in `--help`'s order


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: global flags, then each command module registers its own."""
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
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StreamChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
