"""A stage's autoscaling policy: the bounds and the lag one replica should carry.

Kept apart from the autoscaler so the stored desired pipeline (``state``) can hold policies without
importing the machinery that acts on them.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_REPLICAS = 16


class AutoscalePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    max_replicas: int = Field(4, ge=1, le=MAX_REPLICAS)
    target_lag_per_replica: int = Field(2000, ge=1, description="messages of lag one replica should carry")
    scale_up_cooldown_s: float = Field(5.0, ge=0.0, le=3600.0)
    scale_down_cooldown_s: float = Field(30.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalePolicy:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})")
        return self

    def wanted(self, lag: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, math.ceil(lag / self.target_lag_per_replica)))
