"""``streamchaos score``: score detector alerts against the ledger's fault episodes, print
the scorecard, and write it as JSON and a timeline picture when asked."""

from __future__ import annotations

import argparse
from typing import Any

from streamchaos.cli.common import EXIT_OK, kafka_args, ledger_args, load_ledger
from streamchaos.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("score", help="score detector alerts against the ledger's episodes")
    ledger_args(p)
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
    kafka_args(p, registry=False)
    p.set_defaults(handler=command)


# flags passed to ``score_run`` as they are (``--fault`` is its ``faults``)
SCORE_RUN_OPTIONS = (
    *("alerts", "alerts_topic", "prometheus", "bootstrap_servers", "experiment"),
    *("max_delay", "early", "warmup", "run_start", "run_end", "step"),
)


def command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamchaos.evaluation.scorer import save_scorecard, score_run

    entries = load_ledger(args)
    if not (args.alerts or args.alerts_topic or args.prometheus):
        raise ConfigError("give one of --alerts FILE, --alerts-topic TOPIC, --prometheus URL")
    if args.alerts_topic and not args.alerts and not args.bootstrap_servers:
        raise ConfigError("--bootstrap-servers: required with --alerts-topic")
    options = {name: getattr(args, name) for name in SCORE_RUN_OPTIONS}
    card, alerts = score_run(entries, faults=args.fault, **options)
    print(card.table())
    if args.json:
        save_scorecard(card, args.json)
    if args.png:
        from streamchaos.evaluation.timeline import write_timeline

        write_timeline(card, alerts, Path(args.png))
    return EXIT_OK
