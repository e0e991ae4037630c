"""The fault registry and the discriminated union of fault configs (``type`` tag)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from streamchaos.faults.base import Fault, FaultConfig
from streamchaos.faults.delay import Delay, DelayConfig
from streamchaos.faults.drop import Drop, DropConfig
from streamchaos.faults.duplicate import Duplicate, DuplicateConfig
from streamchaos.faults.outage import Outage, OutageConfig
from streamchaos.faults.reorder import Reorder, ReorderConfig
from streamchaos.faults.stale_replay import StaleReplay, StaleReplayConfig

FAULTS: dict[str, type[Fault]] = {
    cls.Config.model_fields["type"].default: cls
    for cls in (Delay, Reorder, Duplicate, Drop, Outage, StaleReplay)
}

FaultSpec = Annotated[
    DelayConfig | ReorderConfig | DuplicateConfig | DropConfig | OutageConfig | StaleReplayConfig,
    Field(discriminator="type"),
]

__all__ = ["FAULTS", "Fault", "FaultConfig", "FaultSpec"]
