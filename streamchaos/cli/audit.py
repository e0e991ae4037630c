"""``streamchaos audit``: reconcile a source topic, its shadow and the ledger; exit 1 on
any unexplained loss or duplicate, so a pipeline can gate on it."""

from __future__ import annotations

import argparse
import time
from typing import Any

from streamchaos.cli.common import (
    EXIT_OK,
    EXIT_RUNTIME,
    kafka_args,
    ledger_args,
    load_ledger,
    need,
)
from streamchaos.lineage import LINEAGE_HEADER


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="reconcile a source topic, its shadow and the ledger")
    p.add_argument("--source", required=True, help="source topic")
    p.add_argument("--shadow", required=True, help="shadow topic")
    ledger_args(p)
    kafka_args(p, registry=False)
    p.add_argument(
        "--shadow-bootstrap-servers",
        help="the shadow's (and the ledger topic's) cluster when not the source's "
        "(the bridge's kafka.shadow)",
    )
    p.add_argument("--lineage-header", default=LINEAGE_HEADER)
    p.add_argument(
        "--hold-topic",
        help="where the bridge's long holds wait (default: beside the shadow, "
        "features.shadow -> features.hold.shadow); records waiting there are held, not missing",
    )
    p.add_argument("--experiment", help="only this experiment's ledger entries")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole audit")
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from streamchaos.evaluation.audit import audit

    bootstrap = need(args.bootstrap_servers, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS")
    deadline = time.monotonic() + args.timeout  # --timeout bounds the whole audit
    entries = load_ledger(args, args.timeout)
    report = audit(
        bootstrap,
        args.source,
        args.shadow,
        entries,
        lineage_header=args.lineage_header,
        experiment=args.experiment,
        timeout=max(1.0, deadline - time.monotonic()),
        shadow_bootstrap=args.shadow_bootstrap_servers,
        hold_topic=args.hold_topic,
    )
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_RUNTIME
