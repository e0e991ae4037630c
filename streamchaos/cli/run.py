"""``streamchaos run -c FILE [--idle-exit SECONDS]``: the bridge service, stopped cleanly
by SIGTERM/SIGINT (release held records, flush, commit); SIGUSR1 pauses every fault."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from streamchaos.errors import ConfigError

log = logging.getLogger("streamchaos")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the bridge service")
    p.add_argument("-c", "--config", required=True, help="experiment YAML file")
    p.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop cleanly (flush, commit) after this many seconds with no input",
    )
    p.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from streamchaos.bridge import Bridge  # Kafka imports only where needed
    from streamchaos.config import load_config  # discovers the faults: errors exit 2

    if args.idle_exit is not None and args.idle_exit <= 0:
        raise ConfigError("--idle-exit: must be a positive number of seconds")
    bridge = Bridge(load_config(args.config), tune_gc=True)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        bridge.stop(wait=False)

    def _on_usr1(signum: int, frame: FrameType | None) -> None:
        bridge.toggle_pause()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGUSR1, _on_usr1)
    return bridge.run(idle_exit=args.idle_exit)
