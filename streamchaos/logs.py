"""Logging setup: plain lines for people, JSON lines for log pipelines (``--log-format``);
``Repeats`` keeps a recurring client error to one line per interval."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable

# libraries that log a line per HTTP request at INFO (the registry client): DEBUG only
QUIET_LIBRARIES = ("httpx", "httpcore", "urllib3")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(level: int, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)


class Repeats:
    """A message that keeps coming (librdkafka reports every failed connect while a
    broker is down, ~100 a second) is logged the first time; within ``interval`` seconds
    the ones like it (same ``key``) are counted, and logged with their count when the
    interval is over: by the next one, by ``tick``, or by ``flush`` (at shutdown)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._looked = clock()
        self._since: dict[str, tuple[float, int, int, str]] = {}  # key -> last logged at,
        # how many came since, at which level, the latest of them

    def warning(self, key: str, message: str) -> None:
        self.log(logging.WARNING, key, message)

    def log(self, level: int, key: str, message: str) -> None:
        now = self.clock()
        last = self._since.get(key)
        if last is not None and now - last[0] < self.interval:
            self._since[key] = (last[0], last[1] + 1, max(level, last[2]), message)
            return
        if last is not None and last[1]:
            message += f" (and {last[1]} more like it in the last {now - last[0]:.0f} s)"
        self.logger.log(level, "%s", message)
        self._since[key] = (now, 0, level, message)

    def tick(self) -> None:
        """Log the count of each kind whose interval is over (called often: it looks at
        most once a second), so a burst that stopped is still reported."""
        now = self.clock()
        if now - self._looked < 1.0:
            return
        self._looked = now
        self._report(lambda since: now - since >= self.interval)

    def flush(self) -> None:
        """What is still counted, each with the latest of its kind (at shutdown)."""
        self._report(lambda since: True)

    def _report(self, due: Callable[[float], bool]) -> None:
        now = self.clock()
        for key, (since, count, level, message) in list(self._since.items()):
            if count and due(since):
                self.logger.log(
                    level, "%s (%d like it in the last %.0f s)", message, count, now - since
                )
                self._since[key] = (now, 0, level, message)


class ClientLog:
    """librdkafka's own log lines (a client's ``logger``), through ``Repeats`` by facility
    and client (the source and the shadow cluster have their own clients): a client
    reconnecting to a broker that is down logs a ``FAIL`` line a second."""

    def __init__(self, repeats: Repeats) -> None:
        self.repeats = repeats

    def log(self, level: int, msg: str, *args: object) -> None:
        """What confluent-kafka calls: ``log(level, "%s [%s] %s", facility, client, text)``."""
        facility, client = (str(args[0]), str(args[1])) if len(args) >= 2 else ("", "")
        text = "kafka: " + (msg % args if args else msg)
        self.repeats.log(level, f"librdkafka {facility} {client}", text)  # per cluster too


def named(tps: Iterable[tuple[str, int]]) -> str:
    """``topic[partition], ...`` for a log line."""
    return ", ".join(f"{t}[{p}]" for t, p in sorted(tps)) or "nothing"
