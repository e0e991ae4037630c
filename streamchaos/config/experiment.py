"""The experiment: routes, their faults, and the rules that keep the bridge shadow-only."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from streamchaos.config.clients import KafkaSettings, SchemaRegistrySettings, SecretRef, Strict
from streamchaos.config.delivery import exactly_once_problems
from streamchaos.config.holds import long_hold_problems
from streamchaos.config.route import TOPIC_NAME, Route
from streamchaos.config.watching import AlertSettings, Guardrail, guardrail_name
from streamchaos.errors import ConfigError
from streamchaos.lineage import LINEAGE_HEADER
from streamchaos.units import Duration


class LedgerSettings(Strict):
    path: Path | None = None
    topic: str | None = Field(default=None, pattern=TOPIC_NAME)

    @property
    def clock_topic(self) -> str | None:
        """Where the experiment's clock is kept, beside the ledger topic (``shared_clock``)."""
        return f"{self.topic}.clock" if self.topic else None


class MetricsSettings(Strict):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)

    @property
    def loopback(self) -> bool:
        """Only this host can reach the port."""
        if self.bind == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:  # a host name: it may resolve anywhere
            return False


class ControlSettings(Strict):
    """Who may change a running experiment over HTTP (pause, resume, its faults), and
    where the faults changed that way are kept across restarts."""

    token: SecretRef | None = Field(
        default=None,
        description="bearer token the control API requires (needed off loopback)",
    )
    plan_file: Path | None = Field(
        default=None,
        description="JSON file the bridge rewrites on every live fault change and reads "
        "back on start; None: live changes last until the bridge stops",
    )

    def token_value(self) -> str | None:
        """The token, resolved and stripped (a Secret's file ends in a newline); an empty
        one is a config error."""
        if self.token is None:
            return None
        value = self.token.resolve("control.token").get_secret_value().strip()
        if not value:
            raise ConfigError("control.token: the secret is empty")
        return value


class SafetySettings(Strict):
    shadow_suffix: str = Field(default=".shadow", min_length=1)


class BridgeSettings(Strict):
    """Hot-loop tuning. Defaults come from measurements (docs/benchmarks.md)."""

    lineage_header: str | None = Field(
        default=None,
        description="a header with topic/partition/offset on every shadow record (e.g. "
        f"{LINEAGE_HEADER}); None: the ledger's lineage lines say where each record went",
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    poll_timeout: Duration = 0.005
    commit_interval: Duration = 1.0
    shutdown_timeout: Duration = 30.0
    status_interval: Duration = Field(
        default=30.0, ge=0, description="time between status lines in the log; 0: none"
    )
    topic_refresh: Duration = Field(
        default=10.0, gt=0, description="pattern routes: time between looks for new topics"
    )
    hold_horizon: Duration | None = Field(
        default=None,
        gt=0,
        description="delay/label_delay holds longer than this wait in a Kafka topic "
        "(<shadow stem>.hold<suffix>), not in memory; None: all in memory",
    )
    hold_lanes: int = Field(default=16, ge=1, le=1000, description="long-hold topic partitions")


class Config(Strict):
    """A whole experiment: what to read, where to write, what to break."""

    experiment: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 0
    clock: Literal["wall", "event"] = Field(
        default="wall",
        description="what schedules, ramps, budgets and episodes follow: the bridge's own "
        "time (wall), or the records' timestamps (event: a replay at any speed injects "
        "the same)",
    )
    start_at: AwareDatetime | None = Field(
        default=None,
        description="the experiment's time zero (with a UTC offset), shared by every "
        "member and restart; None: when the bridge starts (wall), the first record's "
        "timestamp (event)",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    routes: list[Route] = Field(min_length=1)
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    guardrails: list[Guardrail] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shadow_only(self) -> Config:
        problems = shadow_only_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _delivery_and_holds(self) -> Config:
        problems = long_hold_problems(self)
        if self.delivery == "exactly-once":
            problems = exactly_once_problems(self.kafka, self.bridge.commit_interval) + problems
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def start_ms(self) -> int | None:
        """``start_at`` as epoch milliseconds."""
        return None if self.start_at is None else round(self.start_at.timestamp() * 1000)

    @model_validator(mode="after")
    def _control_is_authenticated_off_loopback(self) -> Config:
        metrics = self.metrics
        if metrics.enabled and not metrics.loopback and self.control.token is None:
            raise ValueError(
                f"control.token: required with metrics.bind {metrics.bind} (not loopback): "
                "anyone who reaches the port could pause or resume the experiment "
                "(give control.token: {env: NAME} or {file: PATH})"
            )
        return self

    @model_validator(mode="after")
    def _watching(self) -> Config:
        """Alert-driven settings need an alert source; guardrail names are unique."""
        names = [guardrail_name(rail) for rail in self.guardrails]
        for k, name in enumerate(names):
            if name in names[:k]:
                raise ValueError(f"guardrails[{k}].name: {name!r} is used twice")
        if self.alerts.enabled:
            return self
        needs = [f"guardrails[{k}]" for k, r in enumerate(self.guardrails) if r.type == "alert"]
        needs += [
            f"routes[{i}].faults[{j}].stop_on"
            for i, route in enumerate(self.routes)
            for j, fault in enumerate(route.faults)
            if fault.stop_on is not None
        ]
        if needs:
            raise ValueError(
                f"{needs[0]}: needs alerts.prometheus or alerts.topic (where the bridge reads "
                "alerts)"
            )
        return self

    @model_validator(mode="after")
    def _patterns_keep_no_plan_file(self) -> Config:
        if self.has_patterns and self.control.plan_file is not None:
            raise ValueError(
                "control.plan_file: not with a route whose source is a pattern (the plan "
                "file names concrete topics, which a restart may match differently)"
            )
        return self

    @model_validator(mode="after")
    def _joins_name_routes(self) -> Config:
        """A joining fault reads another route's records as the bridge consumes them: that
        route must be one of this experiment's, with a topic name (not a pattern), and
        decodable when the join reads its values."""
        routes = {r.source: r for r in self.routes if not r.is_pattern}
        for i, route in enumerate(self.routes):
            for j, fault in enumerate(route.faults):
                spec = fault.joined
                if spec is None:
                    continue
                joined, reads_values = spec.settings.route, spec.reader.needs_value
                where = f"routes[{i}].faults[{j}]"
                field = f"{where}.{spec.field}"
                if route.is_pattern:
                    raise ValueError(f"{where}: {fault.type} is not available on a pattern route")
                if joined == route.source:
                    raise ValueError(f"{field}: must be another route than its own")
                other = routes.get(joined)
                if other is None:
                    raise ValueError(
                        f"{field}: {joined!r} is not a route of this experiment "
                        f"(routes: {', '.join(routes)}); the joined topic must be bridged too"
                    )
                if reads_values and other.format == "bytes":
                    raise ValueError(
                        f"{field}: {fault.type} reads the values of {joined!r}, which has "
                        "format bytes; give that route format avro or json"
                    )
                registry_needed = other.format == "avro" and other.schema_file is None
                if reads_values and registry_needed and not self.schema_registry.url:
                    raise ValueError(
                        f"{field}: {joined!r} is Avro without a schema_file: "
                        "schema_registry.url is needed to read it"
                    )
        return self

    @property
    def has_patterns(self) -> bool:
        return any(route.is_pattern for route in self.routes)

    @property
    def group_id(self) -> str:
        return self.kafka.group_id or f"streamchaos.{self.experiment}"


def shadow_only_problems(cfg: Config) -> list[str]:
    """Each way the config could make the bridge write to a source topic (invariant 2)."""
    problems = []
    sources: dict[str, int] = {}
    for i, route in enumerate(cfg.routes):
        sources.setdefault(route.source, i)
    shadows: dict[str, int] = {}
    suffix = cfg.safety.shadow_suffix
    for i, route in enumerate(cfg.routes):
        where = f"routes[{i}]"
        if sources[route.source] != i:
            problems.append(
                f"{where}.source: {route.source!r} is already the source of "
                f"routes[{sources[route.source]}]"
            )
        if route.shadow in sources:
            problems.append(
                f"{where}.shadow: {route.shadow!r} is the source of "
                f"routes[{sources[route.shadow]}]; the bridge never writes to a source topic"
            )
        if not route.shadow.endswith(suffix) or route.shadow == suffix:
            problems.append(
                f"{where}.shadow: {route.shadow!r} does not end with safety.shadow_suffix "
                f"{suffix!r}"
            )
        if route.is_pattern:  # a template: each topic it matches is checked when it does
            continue
        if route.shadow in shadows:
            problems.append(
                f"{where}.shadow: {route.shadow!r} is already the shadow of "
                f"routes[{shadows[route.shadow]}]"
            )
        shadows.setdefault(route.shadow, i)
    if cfg.ledger.topic is not None and cfg.ledger.topic in sources:
        problems.append(f"ledger.topic: {cfg.ledger.topic!r} is a source topic")
    if cfg.ledger.clock_topic in sources:
        problems.append(
            f"ledger.topic: {cfg.ledger.clock_topic}, where the experiment's clock is kept, "
            "is a source topic"
        )
    for i, route in enumerate(cfg.routes):
        for j, fault in enumerate(route.faults):
            subject = getattr(fault, "subject", None)
            if subject and any(subject.startswith(f"{src}-") for src in sources):
                problems.append(
                    f"routes[{i}].faults[{j}].subject: {subject!r} is a source topic's "
                    "subject; new schemas go to the shadow's subject or a dedicated one"
                )
            if fault.type == "schema_break" and route.format != "avro":
                problems.append(
                    f"routes[{i}].faults[{j}].type: schema_break needs format avro "
                    f"(routes[{i}].format is {route.format})"
                )
        if route.needs_registry and not cfg.schema_registry.url:
            problems.append(
                f"routes[{i}].format: avro faults need schema_registry.url (or "
                f"SCHEMA_REGISTRY_URL), or routes[{i}].schema_file for schemaless Avro"
            )
    return problems
