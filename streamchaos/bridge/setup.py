"""What the bridge builds before it consumes: each route's codec and fault context, and
the schemas its records will need, looked up ahead."""

from __future__ import annotations

import logging
import time

from streamchaos.codec import Registry, RegistryUnavailable, codec_for
from streamchaos.config import Config, Route
from streamchaos.config.holds import hold_topics
from streamchaos.engine import EventClock, Pipeline, WallClock
from streamchaos.engine.clock import WALL
from streamchaos.faults.base import FaultContext
from streamchaos.hold_record import hold_topic
from streamchaos.joins import Joins
from streamchaos.kafkaconf import registry_conf
from streamchaos.metrics import Metrics

log = logging.getLogger(__name__)


class RouteState:
    """Per-route constants and counters the hot loop needs."""

    __slots__ = (
        "clock",
        "consumed",
        "ctx",
        "failed",
        "name",
        "narrow",
        "parts",
        "pipeline",
        "produced",
        "shadow",
        "shadow_parts",
        "taps",
    )

    def __init__(
        self,
        route: Route,
        shadow_parts: int,
        seed: int,
        ctx: FaultContext | None = None,
        source_parts: int = 0,
        clock: WallClock = WALL,
    ) -> None:
        self.name, self.shadow, self.shadow_parts = route.source, route.shadow, shadow_parts
        self.narrow = source_parts > shadow_parts  # the key chooses for some partitions
        self.parts = source_parts
        self.ctx = ctx  # kept for faults added while the bridge runs
        self.taps = ctx.joins.taps(route.source) if ctx is not None else []  # joins fed
        self.clock = clock  # the experiment's, shared by every route
        faults = route.faults
        self.pipeline = Pipeline(route.source, faults, seed, ctx, clock) if faults else None
        self.consumed = self.produced = self.failed = 0


def registry_of(cfg: Config) -> Registry | None:
    sr = cfg.schema_registry
    if not sr.url:
        return None
    return Registry(sr.url, timeout=sr.timeout, backoff=sr.retry_backoff, extra=registry_conf(cfg))


def started_ago(cfg: Config) -> float:
    """Seconds since the experiment's time zero on the wall clock: since ``start_at``
    (shared by members and restarts), else 0 (it starts now). Event time counts from
    ``start_at`` in the records' timestamps instead."""
    if cfg.clock != "wall" or cfg.start_ms is None:
        return 0.0
    return time.time() - cfg.start_ms / 1000


def clock_of(cfg: Config) -> WallClock:
    """The experiment's clock: the bridge's, or the records' (``clock: event``)."""
    return EventClock(cfg.start_ms) if cfg.clock == "event" else WALL


def route_states(
    cfg: Config,
    counts: dict[str, int],
    registry: Registry | None,
    metrics: Metrics,
    clock: WallClock = WALL,
) -> dict[str, RouteState]:
    """Each route's hot-loop state, its faults given the route's codec (``counts``: the
    partitions of each source and shadow topic)."""
    joins = Joins()  # one for the bridge: a route's faults may join another route
    held = hold_topics(cfg)  # routes whose faults may hold beyond the in-memory horizon
    states = {}
    for route in cfg.routes:
        ctx = fault_context(route, registry, metrics, joins)
        if hold_topic(route.shadow, cfg.safety.shadow_suffix) in held:
            ctx.horizon = cfg.bridge.hold_horizon
        parts = counts.get(route.source, 0)
        states[route.source] = RouteState(route, counts[route.shadow], cfg.seed, ctx, parts, clock)
    return states


def fault_context(
    route: Route, registry: Registry | None, metrics: Metrics, joins: Joins | None = None
) -> FaultContext:
    """The codec and reporting hooks record-level faults of ``route`` use."""
    codec = codec_for(route.format, registry, route.schema_file)
    ctx = FaultContext(codec, route.source, route.shadow, joins)
    logged: set[tuple[str, str]] = set()

    def on_undecodable(reason: str) -> None:
        metrics.undecodable.labels(route=route.source, reason=reason).inc()

    def on_error(fault: str, reason: str, message: str) -> None:
        metrics.fault_errors.labels(route=route.source, fault=fault, reason=reason).inc()
        if (fault, reason) not in logged:  # once per cause, the counter has the rest
            logged.add((fault, reason))
            log.error("%s: fault %s cannot apply (%s): %s", route.source, fault, reason, message)

    ctx.undecodable = on_undecodable
    ctx.error = on_error
    ctx.join_missed = lambda fault: metrics.join_misses.labels(
        route=route.source, fault=fault
    ).inc()
    return ctx


def preload_schemas(registry: Registry, routes: list[Route], budget: float) -> None:
    """The latest value schema of each Avro route whose faults decode records, looked up
    before consuming (subject ``<topic>-value``, the default naming): the first records
    then find it cached instead of waiting for the registry. A registry that cannot be
    reached or refuses ends this, and so does ``budget`` seconds spent (startup waits for
    no more); records ask the registry themselves."""
    deadline = time.monotonic() + budget
    for route in routes:
        if not route.needs_registry:
            continue
        if time.monotonic() >= deadline:
            log.info("schemas of later routes not loaded ahead: %.0fs spent", budget)
            return
        subject = f"{route.source}-value"
        try:
            schema_id = registry.preload(subject)
        except RegistryUnavailable as exc:
            log.warning("schemas not loaded ahead: %s", exc)
            return
        if schema_id is not None:
            log.info("%s: value schema %d (latest of %s) loaded", route.source, schema_id, subject)
