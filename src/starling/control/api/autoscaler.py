"""The controller's API for following the load: the autoscaler's report and a stage's policy on or off (the
chain's size), and the shape policy with the shaper's report (its shape)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.control.api.auth import ANYONE, OPERATOR
from starling.control.api.common import AUTH_RESPONSES, REFUSED, Changed, changed, problem
from starling.control.api.deps import Control, Stage
from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.shape_policy import ShapePolicy


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


class ShapeDecisionView(BaseModel):
    at: float = Field(description="Unix time")
    kind: str = Field(description="split or fuse")
    stage: str
    components: list[str] = Field(description="the components a split moved")
    new_stage: str | None = Field(description="the stage a split made, or a fuse took back")
    reason: str
    done: bool
    error: str | None = Field(None, description="why it was not done (the shape stayed as it was)")


class ShapeReport(BaseModel):
    policy: ShapePolicy | None = Field(description="none: the shape changes only when an operator changes it")
    split: dict[str, str] = Field(description="each stage the shaper split out, with the stage it came from")
    decisions: list[ShapeDecisionView] = Field(description="the latest decisions (up to 50), oldest first")


readers = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["autoscaler"])
operators = APIRouter(dependencies=OPERATOR, responses=AUTH_RESPONSES, tags=["autoscaler"])


@readers.get("/autoscaler")
def autoscaler(controller: Control) -> AutoscalerReport:
    """Policies, the last lag per stage, and the latest decisions with their reasons."""
    return AutoscalerReport.model_validate(controller.autoscaler.report())


@readers.get("/shape")
def shape(controller: Control) -> ShapeReport:
    """The shape policy, the stages it split, and its latest decisions with their reasons."""
    return ShapeReport.model_validate(controller.shaper.report())


@operators.put("/shape", responses=REFUSED)
def set_shape(policy: ShapePolicy, controller: Control) -> Changed:
    """Let the chain's shape follow the load: split a stage that stays the bottleneck, fuse it back later."""
    return changed(lambda: controller.set_shape_policy(policy))


@operators.delete("/shape", responses=REFUSED)
def stop_shape(controller: Control) -> Changed:
    """The shape changes only when an operator changes it (the stages stay as they are)."""
    return changed(lambda: controller.set_shape_policy(None))


@operators.put("/stages/{stage}/autoscaling", responses={**REFUSED, 404: problem("no such stage")})
def set_autoscaling(stage: Stage, policy: AutoscalePolicy, controller: Control) -> Changed:
    """Turn autoscaling on (or change its policy) for a stage."""
    return changed(lambda: controller.set_autoscaling(stage, policy))


@operators.delete("/stages/{stage}/autoscaling", responses={**REFUSED, 404: problem("no such stage")})
def stop_autoscaling(stage: Stage, controller: Control) -> Changed:
    """Turn autoscaling off for a stage (its replicas stay as they are)."""
    return changed(lambda: controller.set_autoscaling(stage, None))
