"""``streamchaos validate -c FILE``: load and check a config without touching Kafka, so a
bad field fails in CI (exit 2, the field's path named) rather than at deploy time."""

from __future__ import annotations

import argparse
from typing import Any

from streamchaos.cli.common import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="load and check a config file")
    p.add_argument("-c", "--config", required=True, help="experiment YAML file")
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from streamchaos.config import load_config  # discovers the faults: errors exit 2
    from streamchaos.kafkaconf import producer_conf, registry_conf, security_conf

    cfg = load_config(args.config)
    security_conf(cfg)  # secrets must resolve (their values are never printed)
    registry_conf(cfg)
    producer_conf(cfg)  # the shadow cluster's secrets, when it has its own
    cfg.control.token_value()
    if cfg.control.plan_file is not None:  # what a restart would run with
        from streamchaos.config.plan import load_plan, plan_hash

        kept = load_plan(cfg.control.plan_file, cfg)
        if kept is not None:
            print(f"{cfg.control.plan_file}: plan {plan_hash(kept)} is kept and will be used")
    print(
        f"{args.config}: ok — experiment {cfg.experiment!r}, {len(cfg.routes)} route(s): "
        + ", ".join(f"{r.source} -> {r.shadow}" for r in cfg.routes)
    )
    return EXIT_OK
