"""The fault registry and the discriminated union of fault configs (``type`` tag)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from streamchaos.faults.base import Fault, FaultConfig, ValueFault
from streamchaos.faults.corrupt import Corrupt, CorruptConfig
from streamchaos.faults.delay import Delay, DelayConfig
from streamchaos.faults.drift import Drift, DriftConfig
from streamchaos.faults.drop import Drop, DropConfig
from streamchaos.faults.duplicate import Duplicate, DuplicateConfig
from streamchaos.faults.label import Label, LabelConfig
from streamchaos.faults.outage import Outage, OutageConfig
from streamchaos.faults.reorder import Reorder, ReorderConfig
from streamchaos.faults.schema_break import SchemaBreak, SchemaBreakConfig
from streamchaos.faults.stale_replay import StaleReplay, StaleReplayConfig

FAULTS: dict[str, type[Fault]] = {
    cls.Config.model_fields["type"].default: cls
    for cls in (
        Delay,
        Reorder,
        Duplicate,
        Drop,
        Outage,
        StaleReplay,
        SchemaBreak,
        Corrupt,
        Drift,
        Label,
    )
}

FaultSpec = Annotated[
    DelayConfig
    | ReorderConfig
    | DuplicateConfig
    | DropConfig
    | OutageConfig
    | StaleReplayConfig
    | SchemaBreakConfig
    | CorruptConfig
    | DriftConfig
    | LabelConfig,
    Field(discriminator="type"),
]

VALUE_FAULTS = {name for name, cls in FAULTS.items() if issubclass(cls, ValueFault)}

__all__ = ["FAULTS", "VALUE_FAULTS", "Fault", "FaultConfig", "FaultSpec", "ValueFault"]
