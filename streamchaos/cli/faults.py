"""``streamchaos faults``: every fault type with its parameters, defaults and purpose; with
``--markdown`` the README's fault table, with ``--readme FILE`` that table written into
the file's generated block (``make docs``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamchaos.cli.common import EXIT_OK
from streamchaos.errors import ConfigError
from streamchaos.faults.describe import describe_faults, fault_table, with_fault_table


def register(sub: Any) -> None:
    p = sub.add_parser("faults", help="list every fault type with its parameters and defaults")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="the README's fault table")
    out.add_argument("--readme", metavar="FILE", help="rewrite the fault table in this file")
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    if args.readme:
        path = Path(args.readme)
        try:
            path.write_text(with_fault_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--readme: {exc}") from exc
        print(f"{path}: fault table written")
    else:
        print(fault_table() if args.markdown else describe_faults())
    return EXIT_OK
