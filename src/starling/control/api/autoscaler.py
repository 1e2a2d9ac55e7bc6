"""The controller's API for autoscaling: the autoscaler's report, and a stage's policy on or off."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.control.api.auth import ANYONE, OPERATOR
from starling.control.api.common import AUTH_RESPONSES, REFUSED, Changed, changed, problem
from starling.control.api.deps import Control, Stage
from starling.control.autoscale_policy import AutoscalePolicy


class DecisionView(BaseModel):
    at: float = Field(description="Unix time")
    stage: str
    replicas_from: int
    replicas_to: int
    lag: int
    reason: str


class AutoscalerReport(BaseModel):
    policies: dict[str, AutoscalePolicy] = Field(description="per stage that has autoscaling on")
    lag: dict[str, int] = Field(description="the last consumer-group lag read, per stage")
    decisions: list[DecisionView] = Field(description="the latest decisions (up to 50), oldest first")


readers = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["autoscaler"])
operators = APIRouter(dependencies=OPERATOR, responses=AUTH_RESPONSES, tags=["autoscaler"])


@readers.get("/autoscaler")
def autoscaler(controller: Control) -> AutoscalerReport:
    """Policies, the last lag per stage, and the latest decisions with their reasons."""
    return AutoscalerReport.model_validate(controller.autoscaler.report())


@operators.put("/stages/{stage}/autoscaling", responses={**REFUSED, 404: problem("no such stage")})
def set_autoscaling(stage: Stage, policy: AutoscalePolicy, controller: Control) -> Changed:
    """Turn autoscaling on (or change its policy) for a stage."""
    return changed(lambda: controller.set_autoscaling(stage, policy))


@operators.delete("/stages/{stage}/autoscaling", responses={**REFUSED, 404: problem("no such stage")})
def stop_autoscaling(stage: Stage, controller: Control) -> Changed:
    """Turn autoscaling off for a stage (its replicas stay as they are)."""
    return changed(lambda: controller.set_autoscaling(stage, None))
