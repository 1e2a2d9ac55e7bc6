"""The API of the portal's pipeline page: the controller's view of the pipeline and its autoscaler, and
an operator's changes to a stage, through this service with the request's own token.

The controller decides what a token may see and do (``starling.control.views``; its operator routes):
a user's token reads the stages, counts and its own components, with the workers' addresses, other
users' components and their dead letters' reasons left out; a change from a user's token is the
controller's 403, passed on as it gave it. The page hides the controls a token may not use, but the
refusal is the controller's, never only the page's. Changes are guarded against other sites' pages as
the user's filters are (``my_filters.same_origin``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from starling.control.autoscale_policy import MAX_REPLICAS
from starling.control.client import ControllerClient
from starling.core.spec import COMPONENT_NAME_PATTERN
from starling.web.api.common import Responses, other_methods, problem
from starling.web.api.my_filters import BODY, PROXIED, Change, Controller, ask

router = APIRouter()

# A stage change answers once the backend has applied it: a replica taken away is drained first (it
# finishes its batch and commits), which the local backend waits up to 60 s for.
STAGE_CHANGE_TIMEOUT_S = 90.0

STAGE_CHANGE: Responses = {
    **PROXIED,
    **BODY,
    403: problem("refused by the controller: a change to the pipeline needs an operator's token"),
    404: problem("no such component in the stage, or this service has no controller"),
    422: problem("refused by the controller, with the reason (an unknown component, a bad config)"),
}
StagePath = Annotated[str, Path(description="the stage: ingest, filter or distribute")]
ComponentName = Annotated[
    str, Path(pattern=COMPONENT_NAME_PATTERN, description="the component's instance name in the stage")
]


def patient(controller: ControllerClient) -> ControllerClient:
    """The same controller and token, waited for as long as a stage change may take."""
    return ControllerClient(controller.url, controller.token, timeout_s=STAGE_CHANGE_TIMEOUT_S)


class Replicas(BaseModel):
    replicas: int = Field(ge=0, le=MAX_REPLICAS, description="how many replicas the stage should run")


class PipelineNow(BaseModel):
    """What the pipeline page shows, read from the controller in one request."""

    pipeline: dict[str, Any] = Field(
        description="the controller's GET /pipeline: stages, components, replicas, counts, lag, dead letters"
    )
    autoscaler: dict[str, Any] = Field(
        description="the controller's GET /autoscaler: policies, the last lag, the latest decisions"
    )


@router.get("/pipeline", tags=["pipeline"], summary="The pipeline now", responses=PROXIED)
def pipeline_now(controller: Controller) -> PipelineNow:
    """The stages in order with their components, replicas, workers, counts, consumer lag and dead
    letters by reason, and the autoscaler's policies and latest decisions with their reasons: as much as
    your token may see."""
    return PipelineNow(
        pipeline=ask(controller, "GET", "/pipeline"), autoscaler=ask(controller, "GET", "/autoscaler")
    )


@router.put(
    "/pipeline/stages/{stage}/replicas",
    tags=["pipeline"],
    summary="Set a stage's replicas",
    dependencies=Change,
    responses=STAGE_CHANGE,
)
def set_replicas(stage: StagePath, body: Replicas, controller: Controller) -> Any:
    """Run this many replicas of the stage (an operator's token); the answer carries the pipeline's new
    version. An autoscaled stage's policy may change it again."""
    return ask(patient(controller), "PUT", f"/stages/{stage}/replicas", body.model_dump())


@router.post(
    "/pipeline/stages/{stage}/components",
    tags=["pipeline"],
    summary="Add a component to a stage",
    status_code=201,
    dependencies=Change,
    responses=STAGE_CHANGE,
)
def add_component(
    stage: StagePath,
    controller: Controller,
    body: Annotated[
        dict[str, Any], Body(description="as the controller's POST /stages/{stage}/components takes it")
    ],
) -> Any:
    """Add an installed component (``use``, optionally ``name``, ``config``, ``position``) to the stage;
    its replicas apply it between two batches."""
    return ask(patient(controller), "POST", f"/stages/{stage}/components", body)


@router.patch(
    "/pipeline/stages/{stage}/components/{name}",
    tags=["pipeline"],
    summary="Change a component's config",
    dependencies=Change,
    responses=STAGE_CHANGE,
)
def change_component(
    stage: StagePath,
    name: ComponentName,
    controller: Controller,
    body: Annotated[dict[str, Any], Body(description='{"config": {the fields to change}}')],
) -> Any:
    """Change some fields of a component's config, validated by the component's own model."""
    return ask(patient(controller), "PATCH", f"/stages/{stage}/components/{name}", body)


@router.delete(
    "/pipeline/stages/{stage}/components/{name}",
    tags=["pipeline"],
    summary="Remove a component from a stage",
    dependencies=Change,
    responses=STAGE_CHANGE,
)
def remove_component(stage: StagePath, name: ComponentName, controller: Controller) -> Any:
    """Take the component out of the stage; the stage's other components go on."""
    return ask(patient(controller), "DELETE", f"/stages/{stage}/components/{name}")


other_methods(router, "/pipeline/stages/{stage}/replicas", ("PUT",))
other_methods(router, "/pipeline/stages/{stage}/components", ("POST",))
other_methods(router, "/pipeline/stages/{stage}/components/{name}", ("PATCH", "DELETE"))
