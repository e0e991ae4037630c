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
from collections.abc import Callable, Iterable
from typing import Any

from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.live import LivePlan
from streamchaos.bridge.setup import route_states
from streamchaos.bridge.topics import partition_counts, prepare_shadows
from streamchaos.config import Config
from streamchaos.config.patterns import expand
from streamchaos.errors import BridgeError

log = logging.getLogger(__name__)


def expanded(template: Config, admin: Any, fatal: Callable[[], str | None]) -> Config:
    """``template`` with its pattern routes made concrete for the topics there now."""
    if not template.has_patterns:
        return template
    topics = list(partition_counts(admin, [], 30.0, fatal, every=True))
    cfg, left_out = expand(template, topics)
    for why in left_out:
        log.warning("topic left out: %s", why)
    matched = [r.source for r in cfg.routes if r.source not in _fixed(template)]
    log.info("pattern routes match %d topic(s) now: %s", len(matched), ", ".join(matched))
    return cfg


def _fixed(cfg: Config) -> set[str]:
    return {r.source for r in cfg.routes if not r.is_pattern}


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
    ) -> None:
        self.template, (self.admin, self.shadow_admin) = template, admins
        self.registry, self.journal, self.fwd, self.live = registry, journal, fwd, live
        self.subscribe = subscribe
        self._told: set[str] = set()  # left-out topics already logged

    def found(self, topics: Iterable[str], now: float) -> None:
        """The source cluster's topics now: bridge the new matches."""
        cfg, left_out = expand(self.template, topics)
        for why in left_out:
            if why not in self._told:
                self._told.add(why)
                log.warning("topic left out: %s", why)
        new = [r for r in cfg.routes if r.source not in self.fwd.routes]
        if not new:
            return
        part = self.template.model_copy(update={"routes": new})
        try:
            counts = prepare_shadows(self.admin, part, shadow_admin=self.shadow_admin)
        except BridgeError as exc:  # e.g. a shadow missing without create_shadow
            if str(exc) not in self._told:
                self._told.add(str(exc))
                log.error("new topics not bridged: %s", exc)
            return
        states = route_states(part, counts, self.registry, self.journal.metrics)
        for route in new:
            state = self.fwd.routes[route.source] = states[route.source]
            self.journal.add_route(route.source)
            if state.pipeline is not None:
                self.journal.watch(route.source, state.pipeline)
            for fault in route.faults:
                self.journal.metrics.fault_series(self.template.experiment, route.source, fault)
            log.info("%s: matched a pattern route, bridged to %s", route.source, route.shadow)
        self.fwd.refresh()
        self.fwd.only_topic = ""  # several topics from now on
        routes = [*self.live.cfg.routes, *new]
        self.live.cfg = self.live.cfg.model_copy(update={"routes": routes})
        self.subscribe([r.source for r in routes])
