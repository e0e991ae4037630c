"""What the loop does with what the sentinel found: a fault whose ``stop_on`` alert fired
during its episode stops (the episode ends, ``reason: detected``, with the detection
delay), and a guardrail that is crossed pauses the whole experiment.

A guardrail trips when its condition goes from fine to crossed (an alert guardrail: each
time its alert fires): it pauses the experiment (all faults off, held records released)
and says so in the log, the ledger (``kind: guardrail``) and
``streamchaos_guardrail_tripped`` (1 until resumed). It stays quiet while the condition
lasts, so an operator's resume is not undone at once; it trips again only after the
condition was fine once more.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.sentinel import Finding, Lag, Topics, Waiting
from streamchaos.config import Config
from streamchaos.config.watching import AlertFiring, ConsumerLag, ProduceErrors, guardrail_name
from streamchaos.evaluation.alerts import Alert
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds over which produce errors are counted


class Guard:
    def __init__(
        self,
        cfg: Config,
        journal: Journal,
        metrics: Metrics,
        fwd: Forwarder,
        pause: Callable[[], None],
    ) -> None:
        self.experiment = cfg.experiment
        self.journal, self.metrics, self.fwd, self.pause = journal, metrics, fwd, pause
        self.rails = {guardrail_name(rail): rail for rail in cfg.guardrails}
        self.crossed: set[str] = set()
        self.on_topics: Callable[[frozenset[str], float], None] = lambda names, now: None
        self._errors: deque[tuple[float, int]] = deque()  # (now, failed so far)
        for name in self.rails:
            metrics.guardrail_tripped.labels(guardrail=name).set(0)

    def take(self, found: deque[Finding], now: float) -> None:
        """Everything the sentinel found since the last turn."""
        while found:
            item = found.popleft()
            if isinstance(item, Lag):
                self._lag(item, now)
            elif isinstance(item, Waiting):
                self.metrics.long_held.labels(route=item.route).set(item.records)
            elif isinstance(item, Topics):
                self.on_topics(item.names, now)
            else:
                self._alert(item, now)

    # -- stop on detection --------------------------------------------------------------

    def _alert(self, alert: Alert, now: float) -> None:
        name = str(alert.labels.get("alertname", ""))
        for state, pipeline in self.fwd.pipelines:
            route = state.name
            for stage in pipeline.stages:
                stop = stage.config.stop_on
                if stop is None or not stage.in_episode or not stop.matches(name, alert.labels):
                    continue
                started = self.journal.epoch + stage.started
                if alert.at < started:
                    continue  # it fired before this episode began: not a detection of it
                delay = round(alert.at - started, 3)
                extra = {"detection_delay": delay, "alert": alert.labels}
                self.journal.episode(route, stage, "episode_end", now, "detected", extra)
                stage.stop()
                labels = {"experiment": self.experiment, "route": route, "fault": stage.name}
                self.metrics.detection_delay.labels(**labels).observe(delay)
                log.warning("%s: %s detected by %s after %.1fs", route, stage.name, name, delay)
        for rail_name, rail in self.rails.items():
            if (
                isinstance(rail, AlertFiring)
                and name == rail.alert
                and all(alert.labels.get(k) == v for k, v in rail.labels.items())
            ):
                self._trip(rail_name, f"alert {name} fired", {"labels": alert.labels}, now)

    # -- guardrails ---------------------------------------------------------------------

    def _lag(self, lag: Lag, now: float) -> None:
        for name, rail in self.rails.items():
            if isinstance(rail, ConsumerLag) and rail.group == lag.group:
                self._condition(name, lag.records > rail.max, lag.records, rail.max, now)

    def errors(self, failed: int, now: float) -> None:
        """Produce errors so far (``failed``), once per commit interval."""
        self._errors.append((now, failed))
        while self._errors and now - self._errors[0][0] > WINDOW:
            self._errors.popleft()
        per_minute = failed - self._errors[0][1]
        for name, rail in self.rails.items():
            if isinstance(rail, ProduceErrors):
                crossed = per_minute > rail.max_per_minute
                self._condition(name, crossed, per_minute, rail.max_per_minute, now)

    def resumed(self) -> None:
        """The experiment runs again: no guardrail holds it paused."""
        for name in self.rails:
            self.metrics.guardrail_tripped.labels(guardrail=name).set(0)

    def _condition(self, name: str, crossed: bool, value: Any, limit: Any, now: float) -> None:
        if not crossed:
            if name in self.crossed:
                self.crossed.discard(name)
                log.info("guardrail %s: back within its limit (%s <= %s)", name, value, limit)
            return
        if name not in self.crossed:
            self.crossed.add(name)
            self._trip(name, f"{value} over {limit}", {"value": value, "limit": limit}, now)

    def _trip(self, name: str, why: str, detail: dict[str, Any], now: float) -> None:
        self.metrics.guardrail_tripped.labels(guardrail=name).set(1)
        line = {"guardrail": name, "why": why} | detail  # value and limit, or the labels
        self.journal.ledger.event(None, None, None, "guardrail", self.journal.at_ms(now), line)
        log.warning("guardrail %s: %s: experiment paused (resume with POST /resume)", name, why)
        self.pause()
