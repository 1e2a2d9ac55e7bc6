"""The control API every runtime serves: a Kafka stage worker, or the embedded pipeline.

``/health`` answers while the process lives; ``/ready`` once it consumes; ``/status`` gives state,
counts, lag, partitions and the configuration version; ``/metrics`` is Prometheus text read from the
runtime's own counts at scrape time; ``GET``/``PATCH /config`` and ``PUT /components`` change the
components live (validated first; 422 naming the field); ``POST /pause``, ``/resume``, ``/drain``;
``POST /wiring`` (a reshape moves a paused stage to its new place in the chain);
and the IVOA VOSI ``/availability`` and ``/capabilities``. Everything but the probes and VOSI needs
an operator token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from starling.control.api.auth import OPERATOR, SCRAPER
from starling.control.api.common import (
    AUTH_RESPONSES,
    PROMETHEUS_RESPONSE,
    XML_RESPONSE,
    capabilities,
    config_refused,
    problem,
    refuse,
)
from starling.control.api.metrics import runtime_metrics
from starling.control.api.runtime_deps import Runtime
from starling.control.client import PIPELINE_VERSION_HEADER
from starling.core.secrets import redact_secrets
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.errors import OutageError
from starling.vo.vosi import availability_xml


class WorkerHealth(BaseModel):
    status: str = Field(description="'ok' while the process lives")
    stage: str


class WorkerReady(BaseModel):
    ready: bool
    state: str = Field(description="starting, running, paused, draining, drained or stopping")


class RuntimeState(BaseModel):
    state: str


class ConfigVersion(BaseModel):
    version: int
    applied_at: float = Field(description="Unix time")
    pipeline_version: int | None = Field(None, description="the controller's pipeline version of the list")


class WorkerStatus(BaseModel):
    """What every runtime reports; a Kafka stage worker adds its batches, partitions and topics."""

    model_config = ConfigDict(extra="allow")

    stage: str
    state: str
    uptime_s: float
    messages_in: int
    alerts_in: int
    failed: int
    dead_letters: int
    dead_letter_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="the most frequent reasons, as '<stage>/<component>: <reason>', with their counts",
    )
    lag: int | None = Field(description="messages behind the end of the input; null where unknown")
    components: dict[str, dict[str, Any]] = Field(
        description="per component: kind, in, out, failed, and the component's own counters"
    )
    config_version: int = Field(description="this runtime's own count of changes, from 1 at each start")
    config_history: list[ConfigVersion]
    pending_config_version: int | None
    applied_pipeline_version: int | None = Field(
        None,
        description="the controller's pipeline version of the running component list: the same in every "
        "replica, kept across restarts (null: the list did not come from the controller)",
    )
    pending_pipeline_version: int | None = Field(
        None, description="the controller's pipeline version of a list proposed, not applied yet"
    )
    config: list[ComponentSpec]


class WorkerConfig(BaseModel):
    stage: str
    version: int
    pending_version: int | None = Field(description="a change proposed, not yet applied")
    components: list[ComponentSpec]


class ConfigPatch(BaseModel):
    """Change some fields of one component's config."""

    component: str = Field(description="the component's instance name in this stage")
    config: dict[str, Any] = Field(description="the fields to change, validated by the component's own model")


class ConfigAccepted(BaseModel):
    version: int = Field(description="the configuration version that carries the change")
    applied: bool = Field(description="false until the worker reaches the next batch boundary")


probes = APIRouter(tags=["probes"])
router = APIRouter(dependencies=OPERATOR, responses=AUTH_RESPONSES, tags=["runtime"])
# What a Prometheus scrape reads: any valid token, the read-only metrics token included. Only /metrics:
# /status shows the components' configuration (users' filters, webhook URLs), an operator's to read.
scraped = APIRouter(dependencies=SCRAPER, responses=AUTH_RESPONSES, tags=["runtime"])


@probes.get("/health")
async def health(runtime: Runtime) -> WorkerHealth:
    return WorkerHealth(status="ok", stage=runtime.stage)


@probes.get(
    "/ready",
    responses={503: {"model": WorkerReady, "description": "not ready yet (starting, draining or stopped)"}},
)
async def ready(runtime: Runtime, response: Response) -> WorkerReady:
    ok = runtime.ready
    response.status_code = 200 if ok else 503
    return WorkerReady(ready=ok, state=runtime.state)


@probes.get("/availability", response_class=Response, responses=XML_RESPONSE)
async def availability(runtime: Runtime) -> Response:
    """IVOA VOSI availability."""
    available = runtime.ready and runtime.state == "running"
    note = f"{runtime.stage}: {runtime.state}"
    return Response(availability_xml(available, runtime.started_at, note), media_type="application/xml")


probes.add_api_route("/capabilities", capabilities, response_class=Response, responses=XML_RESPONSE)


@router.get("/status")
def status(runtime: Runtime) -> WorkerStatus:
    return WorkerStatus.model_validate(runtime.status())


@router.post("/pause")
def pause(runtime: Runtime) -> RuntimeState:
    """Stop taking new messages (the group membership and the assignment are kept)."""
    runtime.pause()
    return RuntimeState(state=runtime.state)


@router.post("/resume")
def resume(runtime: Runtime) -> RuntimeState:
    runtime.resume()
    return RuntimeState(state=runtime.state)


@router.post("/drain", status_code=202)
def drain(runtime: Runtime) -> RuntimeState:
    """Finish and commit the batch in hand, leave the consumer group, then stop."""
    runtime.drain()
    return RuntimeState(state=runtime.state)


class Wiring(BaseModel):
    """A stage's new place in the chain, given by the controller at a reshape."""

    model_config = ConfigDict(extra="forbid")

    pipeline: dict[str, Any] = Field(description="the whole new pipeline description")
    pipeline_version: int = Field(ge=1, description="the controller's version of that pipeline")
    start: dict[str, int] = Field(
        default_factory=dict,
        description="where the stage begins on its input, as 'topic/partition': offset (a partition "
        "behind its start in the group's committed offsets is moved to it)",
    )


@router.post(
    "/wiring",
    responses={409: problem("not holding: pause it first"), 422: problem("refused, with the reason")},
)
def rewire(wiring: Wiring, runtime: Runtime) -> RuntimeState:
    """Take the stage's place in a new pipeline (a reshape): its input, output and components change
    together at the batch boundary where it holds. Only while paused and holding (see ``/status``)."""
    if not runtime.holding:
        refuse(409, f"{runtime.stage} is not holding: pause it and wait until its status says so")
    with config_refused():
        runtime.rewire(
            PipelineSpec.from_data(wiring.pipeline, "pipeline"), wiring.pipeline_version, wiring.start
        )
    return RuntimeState(state=runtime.state)


@router.get("/config")
def get_config(runtime: Runtime) -> WorkerConfig:
    """The stage's components in order, with their configs, and the configuration version."""
    return WorkerConfig(
        stage=runtime.stage,
        version=runtime.config_version,
        pending_version=runtime.pending_version,
        components=[
            c.model_copy(update={"config": redact_secrets(c.config)}) for c in runtime.component_specs
        ],
    )


@router.patch(
    "/config",
    responses={
        404: problem("no such component"),
        422: problem("refused, with the reason"),
        503: problem("a stored body could not be fetched"),
    },
)
def patch_config(change: ConfigPatch, runtime: Runtime) -> ConfigAccepted:
    """Validate a config change and apply it live (next batch boundary), or refuse it with the reason."""
    try:
        with config_refused():
            version = runtime.patch_component(change.component, change.config)
    except OutageError as exc:  # a stored body it refers to could not be fetched: try again
        refuse(503, str(exc))
    except KeyError:
        names = [c.instance_name for c in runtime.component_specs]
        refuse(404, f"no component {change.component!r} in this stage; it has {names}")
    return ConfigAccepted(version=version, applied=False)


PipelineVersion = Annotated[
    int | None,
    Header(
        alias=PIPELINE_VERSION_HEADER,
        description="the controller's pipeline version the list comes from (the controller sends it)",
    ),
]


@router.put(
    "/components",
    responses={422: problem("refused, with the reason"), 503: problem("a stored body could not be fetched")},
)
def put_components(
    components: list[ComponentSpec], runtime: Runtime, pipeline_version: PipelineVersion = None
) -> ConfigAccepted:
    """Replace the stage's component list (add, remove, reorder) while it runs."""
    try:
        with config_refused():
            version = runtime.propose_components(components, pipeline_version)
    except OutageError as exc:  # a stored body it refers to could not be fetched: the sender tries again
        refuse(503, str(exc))
    return ConfigAccepted(version=version, applied=False)


@scraped.get("/metrics", response_class=Response, responses=PROMETHEUS_RESPONSE)
def metrics(runtime: Runtime) -> Response:
    return Response(runtime_metrics(runtime), media_type=CONTENT_TYPE_LATEST)
