"""The controller's API for the pipeline: probes, VOSI, status, metrics, the stages and their workers.

Any token (a ``metrics`` token too) may read ``/status`` and ``/metrics``; a user token ``/pipeline``,
redacted to what it may see; changing a stage (its components,
their order and configs, its replicas) and reading each replica's own status need an operator token.
Each change answers with the desired pipeline's new version (see ``Controller``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from starling.control.api.auth import ANYONE, OPERATOR, SCRAPER, Anyone
from starling.control.api.autoscaler import AutoscalerReport, ShapeReport
from starling.control.api.common import (
    AUTH_RESPONSES,
    PROMETHEUS_RESPONSE,
    REFUSED,
    XML_RESPONSE,
    Changed,
    Responses,
    changed,
    problem,
    refuse,
)
from starling.control.api.deps import Control, Stage
from starling.control.api.worker import WorkerStatus
from starling.control.autoscale_policy import MAX_REPLICAS
from starling.control.state import DesiredPipeline
from starling.control.views import pipeline_view
from starling.core.spec import COMPONENT_NAME_PATTERN, STAGE_NAME_PATTERN, ComponentSpec
from starling.core.stages import chain_names
from starling.errors import OutageError
from starling.vo.vosi import EXECUTION_BROKER_ID, availability_xml, capabilities_xml


class ControllerHealth(BaseModel):
    status: str = Field(description="'ok' while the controller runs")
    service: str


class Ready(BaseModel):
    ready: bool


class ControllerStatus(BaseModel):
    state: str
    uptime_s: float
    pipeline_version: int
    replicas: dict[str, int] = Field(description="desired replicas per stage")
    restarts: dict[str, int] = Field(description="restarts per replica ('stage#index')")
    autoscaler: AutoscalerReport
    shape: ShapeReport


class WorkerView(BaseModel):
    """One replica as the pipeline view shows it (nulls where it does not answer)."""

    replica: int
    alive: bool
    url: str | None
    state: str | None
    messages_in: int | None
    lag: int | None
    config_version: int | None = Field(description="the replica's own count of changes, from 1 at each start")
    applied_pipeline_version: int | None = Field(
        None, description="the desired pipeline's version of the component list the replica runs"
    )
    uptime_s: float | None
    dead_letters: int | None = Field(None, description="since the replica started")


class StageView(BaseModel):
    name: str
    components: list[ComponentSpec]
    replicas: int
    input_topics: list[str]
    output_topic: str | None
    messages_in: int
    alerts_per_s: float
    lag: int
    dead_letters: int = Field(0, description="written by its replicas since they started")
    dead_letter_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="the most frequent reasons ('<stage>/<component>: <reason>') with their counts; a user "
        "sees none of another user's components",
    )
    workers: list[WorkerView]


class PipelineView(BaseModel):
    version: int = Field(description="the desired pipeline's version")
    stages: list[StageView]


class WorkerReport(BaseModel):
    """One replica's own status, as it reports it (null when it does not answer)."""

    replica: int
    alive: bool
    status: WorkerStatus | None


class NewComponent(BaseModel):
    use: str = Field(min_length=1, description="an installed component (see `starling components`)")
    name: str | None = Field(None, pattern=COMPONENT_NAME_PATTERN)
    config: dict[str, Any] = Field(default_factory=dict)
    position: int | None = Field(None, ge=0, description="index in the stage; default: at the end")


class ConfigChange(BaseModel):
    config: dict[str, Any]


class Replicas(BaseModel):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class Order(BaseModel):
    components: list[str]


class NewStage(BaseModel):
    name: str = Field(
        pattern=STAGE_NAME_PATTERN, description="the stage's name (its group, topic, Deployment)"
    )
    after: str | None = Field(
        None, description="the stage it follows in the chain: it reads what that stage writes"
    )
    beside: str | None = Field(
        None,
        description="instead of 'after': a stage of the chain it runs beside, reading what that stage "
        "writes; nothing in the chain waits for it, and it writes only its own outputs",
    )
    components: list[ComponentSpec] = Field(
        default_factory=list,
        description="its components, of any kind but a source (run by kind: annotators first)",
    )
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)


class Fuse(BaseModel):
    next: str = Field(description="the stage right after it, which it takes in (named, so no other is)")


class Split(BaseModel):
    name: str = Field(pattern=STAGE_NAME_PATTERN, description="the new stage's name")
    components: list[str] = Field(min_length=1, description="the components it takes from the stage")
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)


NO_STAGE: Responses = {404: problem("no such stage")}
RESHAPE_RESPONSES: Responses = {
    **REFUSED,
    **NO_STAGE,
    503: problem("Kafka, or the replicas to drain, did not answer in time: nothing changed; try again"),
}
CHANGE_RESPONSES = {**REFUSED, 404: problem("no such stage, or no such component in it")}

probes = APIRouter(tags=["probes"])
scrapers = APIRouter(dependencies=SCRAPER, responses=AUTH_RESPONSES, tags=["pipeline"])
readers = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["pipeline"])
operators = APIRouter(dependencies=OPERATOR, responses=AUTH_RESPONSES, tags=["pipeline"])


@probes.get("/health")
async def health() -> ControllerHealth:
    return ControllerHealth(status="ok", service="controller")


@probes.get("/ready")
async def ready() -> Ready:
    return Ready(ready=True)


@probes.get("/availability", response_class=Response, responses=XML_RESPONSE)
async def availability(controller: Control) -> Response:
    """IVOA VOSI availability."""
    document = availability_xml(True, controller.started_at, "controller running")
    return Response(document, media_type="application/xml")


@probes.get("/capabilities", response_class=Response, responses=XML_RESPONSE)
async def controller_capabilities(request: Request) -> Response:
    """IVOA VOSI capabilities: the controller's, with the ExecutionBroker it serves (``/offersets``)."""
    base = str(request.base_url).rstrip("/")
    document = capabilities_xml(base, ((EXECUTION_BROKER_ID, "/offersets"),))
    return Response(document, media_type="application/xml")


@scrapers.get("/status")
def status(controller: Control) -> ControllerStatus:
    return ControllerStatus(
        state="running",
        uptime_s=round(time.time() - controller.started_at, 3),
        pipeline_version=controller.desired.version,
        replicas=dict(controller.desired.replicas),
        restarts=controller.backend.restarts(),
        autoscaler=AutoscalerReport.model_validate(controller.autoscaler.report()),
        shape=ShapeReport.model_validate(controller.shaper.report()),
    )


@readers.get("/pipeline")
def pipeline(controller: Control, who: Anyone) -> PipelineView:
    """The stages, their components in order, replicas, topics, throughput and lag. Secrets are never
    shown; a user token sees its own components' configs and none of another user's."""
    return PipelineView.model_validate(pipeline_view(controller.view(), who))


@scrapers.get("/metrics", response_class=Response, responses=PROMETHEUS_RESPONSE)
def metrics(controller: Control) -> Response:
    """Replicas and lag per stage, and the autoscaler's decisions, as Prometheus text."""
    lines = ["# TYPE starling_stage_replicas gauge"]
    lines += [f'starling_stage_replicas{{stage="{s}"}} {n}' for s, n in controller.desired.replicas.items()]
    lines.append("# TYPE starling_stage_lag gauge")
    lines += [f'starling_stage_lag{{stage="{s}"}} {n}' for s, n in controller.autoscaler.last_lag.items()]
    lines.append("# TYPE starling_autoscaler_decisions_total counter")
    counts: dict[tuple[str, str], int] = {}
    for decision in controller.autoscaler.decisions:
        key = (decision.stage, "up" if decision.replicas_to > decision.replicas_from else "down")
        counts[key] = counts.get(key, 0) + 1
    lines += [
        f'starling_autoscaler_decisions_total{{stage="{s}",direction="{d}"}} {n}'
        for (s, d), n in counts.items()
    ]
    lines.append("# TYPE starling_shape_decisions_total counter")
    shaped = Counter((d.kind, d.stage, d.done) for d in controller.shaper.decisions)
    lines += [
        f'starling_shape_decisions_total{{kind="{k}",stage="{s}",done="{str(done).lower()}"}} {n}'
        for (k, s, done), n in shaped.items()
    ]
    lines.append("# TYPE starling_stages gauge")
    lines.append(f"starling_stages {len(controller.desired.spec.stages)}")
    return Response("\n".join(lines) + "\n", media_type=CONTENT_TYPE_LATEST)


@operators.post("/stages", status_code=201, responses=RESHAPE_RESPONSES)
def insert_stage(body: NewStage, controller: Control) -> Changed:
    """Insert a stage into the running chain, after ``after``: it takes over exactly where the stage
    after it had committed, and that stage then reads the new stage's output. No alert is lost or taken
    twice; the output pauses while the stage after it is rewired. Or add one ``beside`` a stage of the
    chain: it reads what that stage writes from now on, and nothing in the chain waits for it."""
    names = chain_names(controller.desired.spec)
    if (body.after is None) == (body.beside is None):
        refuse(422, "name the stage it goes after ('after') or beside ('beside'), one of the two")
    place = body.after or body.beside
    if place not in names:
        refuse(404, f"no stage {place!r} in the chain; its stages are {', '.join(names)}")
    if body.beside is not None:
        beside = body.beside
        return _reshaped(lambda: controller.add_branch(body.name, beside, body.components, body.replicas))
    after = place
    return _reshaped(lambda: controller.insert_stage(body.name, after, body.components, body.replicas))


@operators.delete("/stages/{stage}", responses=RESHAPE_RESPONSES)
def remove_stage(stage: Stage, controller: Control) -> Changed:
    """Remove a stage from between two others while the chain runs: the stage after it takes what it
    wrote, then goes on from exactly where it stopped reading."""
    return _reshaped(lambda: controller.remove_stage(stage))


@operators.post("/stages/{stage}/split", status_code=201, responses=RESHAPE_RESPONSES)
def split_stage(stage: Stage, body: Split, controller: Control) -> Changed:
    """Move some components of a stage into a new stage right after it, which scales on its own."""
    return _reshaped(lambda: controller.split_stage(stage, body.name, body.components, body.replicas))


@operators.post("/stages/{stage}/fuse", responses=RESHAPE_RESPONSES)
def fuse_stages(stage: Stage, body: Fuse, controller: Control) -> Changed:
    """Make a stage and the one after it one stage (one hop fewer), under the first one's name."""
    return _reshaped(lambda: controller.fuse_stages(stage, body.next))


def _reshaped(change: Callable[[], DesiredPipeline]) -> Changed:
    try:
        return changed(change)
    except OutageError as exc:
        refuse(503, str(exc))


@operators.get("/stages/{stage}/workers", responses=NO_STAGE)
def workers(stage: Stage, controller: Control) -> list[WorkerReport]:
    """Each replica's own status (counts, lag, configuration and its version), as it reports it."""
    reports = []
    for worker in controller.backend.workers(stage):
        found = worker.get("/status", timeout_s=2.0)
        status = None if found is None else WorkerStatus.model_validate(found)
        reports.append(WorkerReport(replica=worker.replica, alive=worker.alive, status=status))
    return reports


@operators.post("/stages/{stage}/components", status_code=201, responses=CHANGE_RESPONSES)
def add(stage: Stage, component: NewComponent, controller: Control) -> Changed:
    spec = ComponentSpec(use=component.use, name=component.name, config=component.config)
    return changed(lambda: controller.add(stage, spec, component.position))


@operators.delete("/stages/{stage}/components/{name}", responses=CHANGE_RESPONSES)
def remove(stage: Stage, name: str, controller: Control) -> Changed:
    return changed(lambda: controller.remove(stage, name))


@operators.patch("/stages/{stage}/components/{name}", responses=CHANGE_RESPONSES)
def patch(stage: Stage, name: str, change: ConfigChange, controller: Control) -> Changed:
    return changed(lambda: controller.patch(stage, name, change.config))


@operators.put("/stages/{stage}/order", responses={**REFUSED, **NO_STAGE})
def order(stage: Stage, body: Order, controller: Control) -> Changed:
    return changed(lambda: controller.reorder(stage, body.components))


@operators.put("/stages/{stage}/replicas", responses={**REFUSED, **NO_STAGE})
def replicas(stage: Stage, body: Replicas, controller: Control) -> Changed:
    return changed(lambda: controller.set_replicas(stage, body.replicas))
