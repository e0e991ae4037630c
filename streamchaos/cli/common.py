"""What several commands share: exit codes, the ledger and Kafka flags, and reading the
ledger those flags name (errors name the flag, so a typo is a usage error, exit 2)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from streamchaos.errors import BridgeError, ConfigError

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def ledger_args(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--ledger", help="ledger JSON Lines file")
    where.add_argument(
        "--ledger-topic", help="ledger Kafka topic (the bridge's ledger.topic; needs a broker)"
    )


def kafka_args(p: argparse.ArgumentParser, registry: bool = True) -> None:
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


def need(value: str | None, flag: str, env: str) -> str:
    if not value:
        raise ConfigError(f"{flag}: required (or set {env})")
    return value


def load_ledger(args: argparse.Namespace, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The entries of ``--ledger FILE`` or of ``--ledger-topic T`` (only ``--experiment``'s
    records of a topic, when given); a topic that does not exist is a usage error."""
    from streamchaos.ledger import read_ledger, read_ledger_topic

    if args.ledger:
        return read_ledger(args.ledger)
    bootstrap = getattr(args, "shadow_bootstrap_servers", None) or args.bootstrap_servers
    if not bootstrap:
        raise ConfigError("--bootstrap-servers: required with --ledger-topic")
    try:  # the ledger topic lives where the shadows do
        return read_ledger_topic(bootstrap, args.ledger_topic, timeout, args.experiment)
    except BridgeError as exc:
        raise ConfigError(f"--ledger-topic: {exc}") from exc
