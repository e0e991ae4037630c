"""Pattern routes at run time: topics that match, bridged as they appear.

At start the bridge expands each pattern route into one route per matching topic
(``config.patterns``). Then the sentinel lists the source cluster's topics every
``bridge.topic_refresh``; a new match becomes a route between two batches, as a live
fault change does: its shadow is prepared (created with ``create_shadow``), its faults
get their state, counters and pipeline, and the consumer subscribes to it too (a
rebalance, which hands partitions over without loss). A topic the shadow-only rules
refuse is logged once and left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.live import LivePlan
from streamchaos.bridge.setup import route_states
from streamchaos.bridge.topics import partition_counts, prepare_shadows
from streamchaos.config import Config
from streamchaos.config.patterns import expand
from streamchaos.engine.clock import WALL, WallClock
from streamchaos.errors import BridgeError
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)


def expanded(
    template: Config, admin: Any, fatal: Callable[[], str | None], metrics: Metrics, sentinel: Any
) -> Config:
    """``template`` with its pattern routes made concrete for the topics there now (their
    series at 0; the sentinel watches their shadows' lag)."""
    if not template.has_patterns:
        return template
    topics = list(partition_counts(admin, [], 30.0, fatal, every=True))
    cfg, left_out = expand(template, topics)
    for why in left_out:
        log.warning("topic left out: %s", why)
    fixed = {r.source for r in template.routes}
    matched = [r for r in cfg.routes if r.source not in fixed]
    for route in matched:
        metrics.route_series(cfg.experiment, route)
    sentinel.shadows = [r.shadow for r in cfg.routes]
    names = ", ".join(r.source for r in matched) or "none yet"
    log.info("pattern routes match %d topic(s) now: %s", len(matched), names)
    return cfg


class Discovery:
    """Adds the routes of topics that match a pattern after the start."""

    def __init__(
        self,
        template: Config,
        admins: tuple[Any, Any],
        registry: Any,
        journal: Journal,
        fwd: Forwarder,
        live: LivePlan,
        subscribe: Callable[[list[str]], None],
        sentinel: Any,
        clock: WallClock = WALL,
    ) -> None:
        self.template, (self.admin, self.shadow_admin) = template, admins
        self.registry, self.journal, self.fwd, self.live = registry, journal, fwd, live
        self.subscribe, self.sentinel = subscribe, sentinel
        self.clock = clock  # the experiment's, shared by every route
        self._seen: frozenset[str] = frozenset(r.source for r in live.cfg.routes)
        self._told: set[str] = set()  # what was logged already
        fixed = {r.source for r in template.routes}
        for route in live.cfg.routes:  # matched at start: the ledger says so too
            if route.source not in fixed:
                live.matched(route, 0.0)

    def found(self, topics: frozenset[str], now: float) -> None:
        """The source cluster's topics now: bridge the new matches. Whatever goes wrong
        with one is logged; the bridge goes on with the others."""
        new_names, self._seen = topics - self._seen, topics
        if not new_names:
            return
        try:
            self._add(new_names, now)
        except Exception as exc:  # a cluster that does not answer: the next look retries
            self._seen -= new_names
            self._tell(f"new topics not bridged yet: {type(exc).__name__}: {exc}")

    def _add(self, names: frozenset[str], now: float) -> None:
        running = list(self.live.cfg.routes)
        cfg, left_out = expand(self.template, names, running)
        for why in left_out:
            self._tell(f"topic left out: {why}")
        added = []
        for route in cfg.routes[len(running) :]:
            part = self.template.model_copy(update={"routes": [route]})
            try:
                counts = prepare_shadows(self.admin, part, shadow_admin=self.shadow_admin)
            except BridgeError as exc:  # e.g. its shadow missing without create_shadow
                self._tell(f"{route.source} not bridged: {exc}")
                continue
            states = route_states(part, counts, self.registry, self.journal.metrics, self.clock)
            state = states[route.source]
            self.fwd.routes[route.source] = state
            self.journal.add_route(route.source)
            if state.pipeline is not None:
                self.journal.watch(route.source, state.pipeline)
            self.journal.metrics.route_series(self.template.experiment, route)
            added.append(route)
        if not added:
            return
        self.fwd.refresh()
        self.fwd.only_topic = ""  # several topics from now on
        routes = [*running, *added]
        self.live.cfg = self.live.cfg.model_copy(update={"routes": routes})
        for route in added:  # the ledger says which routes came when, and with what
            self.live.matched(route, now)
            log.info("%s: matched a pattern route, bridged to %s", route.source, route.shadow)
        self.sentinel.shadows = [r.shadow for r in routes]  # the lag guardrails watch these
        self.subscribe([r.source for r in routes])

    def _tell(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            log.warning("%s", message)
