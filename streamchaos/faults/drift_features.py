"""The settings of one drifted feature (``drift.features.<name>``): which operation, and
its parameters. Apart from the fault module so the column maths can name its settings
without importing the fault back.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureDrift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shift: float | None = Field(default=None, description="mean shift (absolute or in σ)")
    unit: Literal["absolute", "sigma"] = "absolute"
    scale: float | None = Field(default=None, gt=0, description="spread × this about the mean")
    noise: float | None = Field(default=None, ge=0, description="σ of added Gaussian noise")
    remap: dict[str, str] | None = Field(default=None, description="category a → b")
    p: float = Field(default=1.0, ge=0, le=1, description="remap probability")
    new_category: str | None = Field(default=None, description="an unseen category")
    rate: float = Field(default=0.1, ge=0, le=1, description="new_category rate")
    mix: dict[str, float] | None = Field(default=None, description="target frequencies")
    null_rate: float | None = Field(default=None, ge=0, le=1, description="share set to null")

    @model_validator(mode="after")
    def _one_op(self) -> FeatureDrift:
        ops = (
            self.shift,
            self.scale,
            self.noise,
            self.remap,
            self.new_category,
            self.mix,
            self.null_rate,
        )
        if all(op is None for op in ops):
            raise ValueError(
                "give at least one of shift, scale, noise, remap, new_category, mix, null_rate"
            )
        if self.mix is not None and not math.isclose(sum(self.mix.values()), 1.0, abs_tol=1e-6):
            raise ValueError("mix frequencies must sum to 1")
        return self

    @property
    def numeric(self) -> bool:
        return any(op is not None for op in (self.shift, self.scale, self.noise))
