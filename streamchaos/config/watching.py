"""What a running bridge watches besides its records: detector alerts (for a fault's
``stop_on`` and the ``alert`` guardrail) and guardrails, which pause the whole experiment
when the system under test suffers more than planned."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from streamchaos.config.clients import Strict
from streamchaos.units import Duration


class AlertSettings(Strict):
    """Where the bridge reads alerts while it runs: Prometheus's ``ALERTS`` series, or a
    topic of alert objects (``{"at_ms", "labels": {"alertname", ...}}``, as ``score``
    and ``watch`` write them)."""

    prometheus: str | None = Field(
        default=None, pattern=r"^https?://", description="Prometheus base URL"
    )
    topic: str | None = Field(default=None, description="alerts topic on the source cluster")
    interval: Duration = Field(default=1.0, gt=0, description="time between two looks")

    @property
    def enabled(self) -> bool:
        return self.prometheus is not None or self.topic is not None


class ConsumerLag(Strict):
    """The lag of a consumer group (the system under test) on the shadow topics."""

    type: Literal["consumer_lag"] = "consumer_lag"
    name: str | None = None
    group: str = Field(min_length=1)
    max: int = Field(ge=0, description="records behind the shadows' ends, summed")


class ProduceErrors(Strict):
    """Shadow records whose delivery finally failed, per minute."""

    type: Literal["produce_errors"] = "produce_errors"
    name: str | None = None
    max_per_minute: float = Field(ge=0)


class AlertFiring(Strict):
    """An alert (from ``alerts:``) fires."""

    type: Literal["alert"] = "alert"
    name: str | None = None
    alert: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


Guardrail = Annotated[ConsumerLag | ProduceErrors | AlertFiring, Field(discriminator="type")]


def guardrail_name(rail: ConsumerLag | ProduceErrors | AlertFiring) -> str:
    if rail.name:
        return rail.name
    if isinstance(rail, ConsumerLag):
        return f"consumer_lag:{rail.group}"
    if isinstance(rail, AlertFiring):
        return f"alert:{rail.alert}"
    return rail.type
