"""The controller: holds the desired pipeline, makes the running workers match it, and serves its API.

Every change (add, remove, reorder, reconfigure a component; set a stage's replicas) is validated
against the components' own config models first, then saved in the store with a new version, then
written where new and restarted workers read it, then pushed to the running replicas of the stage
(``PUT /components``), which apply it between two batches: no restart, no alert lost or doubled.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from starling.control.autoscaler import AutoscalePolicy, Autoscaler
from starling.control.backends.base import Backend
from starling.control.filters_api import add_filter_routes
from starling.control.service import (
    COMMON_RESPONSES,
    PROMETHEUS_RESPONSE,
    XML_RESPONSE,
    allow_every_method_of_the_path,
    bearer,
)
from starling.control.state import ControllerState, DesiredPipeline
from starling.control.watch_api import add_watch_routes
from starling.core.registry import build_component
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.core.stages import STAGES, StageName, stage_component_specs, stage_kind, stage_layout
from starling.errors import ConfigError, StoreError
from starling.transport.kafka.clients import GroupLag
from starling.vo.vosi import availability_xml, capabilities_xml

MAX_REPLICAS = 16
_STAGE_FIELD: dict[StageName, str] = {"ingest": "annotators", "filter": "filters", "distribute": "sinks"}


def with_stage(spec: PipelineSpec, stage: StageName, components: list[ComponentSpec]) -> PipelineSpec:
    return spec.model_copy(update={_STAGE_FIELD[stage]: components})


class Controller:
    def __init__(
        self,
        state: ControllerState,
        backend: Backend,
        desired: DesiredPipeline,
        store_location: Path | None = None,
    ) -> None:
        self.state = state
        self.store_location = store_location
        self.backend = backend
        self.desired = desired
        self.autoscaler = Autoscaler(self)
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._lag_readers: dict[StageName, GroupLag] = {}

    def stage_lag(self, stage: StageName) -> int:
        """The stage's consumer-group lag, read from the broker."""
        reader = self._lag_readers.get(stage)
        if reader is None:
            kafka = self.desired.spec.kafka
            reader = GroupLag(kafka, kafka.group(stage), stage_layout(self.desired.spec, stage).input_topics)
            self._lag_readers[stage] = reader
        return reader.read(timeout_s=5.0)

    def close(self) -> None:
        for reader in self._lag_readers.values():
            reader.close()

    # -- reading -----------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        stages = []
        for stage in STAGES:
            layout = stage_layout(self.desired.spec, stage)
            workers: list[dict[str, Any]] = []
            for worker in self.backend.workers(stage):
                status = worker.get("/status", timeout_s=2.0) or {}
                workers.append(
                    {
                        "replica": worker.replica,
                        "alive": worker.alive,
                        "url": worker.base_url,
                        "state": status.get("state"),
                        "messages_in": status.get("messages_in"),
                        "lag": status.get("lag"),
                        "config_version": status.get("config_version"),
                        "uptime_s": status.get("uptime_s"),
                    }
                )
            messages = sum(w["messages_in"] or 0 for w in workers)
            uptime = max((w["uptime_s"] or 0 for w in workers), default=0)
            stages.append(
                {
                    "name": stage,
                    "components": [c.model_dump() for c in stage_component_specs(self.desired.spec, stage)],
                    "replicas": self.desired.replicas.get(stage, 0),
                    "input_topics": layout.input_topics,
                    "output_topic": layout.output_topic,
                    "messages_in": messages,
                    "alerts_per_s": round(messages / uptime, 1) if uptime else 0.0,
                    "lag": sum(w["lag"] or 0 for w in workers),
                    "workers": workers,
                }
            )
        return {"version": self.desired.version, "stages": stages}

    # -- changing ----------------------------------------------------------------------------------

    def _change(
        self,
        stage: StageName,
        components: list[ComponentSpec] | None = None,
        replicas: int | None = None,
        autoscaling: AutoscalePolicy | bool | None = False,
    ) -> DesiredPipeline:
        """``autoscaling``: a policy to set, None to switch it off, False (default) to leave it."""
        with self._lock:
            spec = self.desired.spec
            if components is not None:
                names = [c.instance_name for c in components]
                if len(set(names)) != len(names):
                    raise ConfigError(f"component names must be unique in a stage; got {names}")
                kind = stage_kind(stage)
                for component in components:  # validated against each component's own config model
                    build_component(component.use, component.config, component.instance_name, kind)
                spec = with_stage(spec, stage, components)
            counts = dict(self.desired.replicas)
            policies = dict(self.desired.autoscaling)
            if isinstance(autoscaling, AutoscalePolicy):
                policies[stage] = autoscaling
                bounded = max(autoscaling.min_replicas, min(autoscaling.max_replicas, counts.get(stage, 1)))
                if bounded != counts.get(stage):
                    replicas = bounded
            elif autoscaling is None:
                policies.pop(stage, None)
            if replicas is not None:
                counts[stage] = replicas
            desired = DesiredPipeline(
                version=self.desired.version + 1, spec=spec, replicas=counts, autoscaling=policies
            )
            self.state.save(desired)
            self.desired = desired
            self.backend.write_spec(spec)
            if components is not None:
                payload = [c.model_dump() for c in components]
                for worker in self.backend.workers(stage):
                    # A worker that is down reads the new pipeline from its file when it restarts.
                    with contextlib.suppress(httpx.HTTPError):
                        worker.put("/components", payload)
            if replicas is not None:
                self.backend.scale({stage: replicas})
            return desired

    def components(self, stage: StageName) -> list[ComponentSpec]:
        return stage_component_specs(self.desired.spec, stage)

    def add(self, stage: StageName, component: ComponentSpec, position: int | None) -> DesiredPipeline:
        current = self.components(stage)
        index = len(current) if position is None else max(0, min(position, len(current)))
        return self._change(stage, [*current[:index], component, *current[index:]])

    def remove(self, stage: StageName, name: str) -> DesiredPipeline:
        current = self.components(stage)
        if name not in [c.instance_name for c in current]:
            raise KeyError(name)
        return self._change(stage, [c for c in current if c.instance_name != name])

    def reorder(self, stage: StageName, names: list[str]) -> DesiredPipeline:
        current = {c.instance_name: c for c in self.components(stage)}
        if sorted(names) != sorted(current):
            raise ConfigError(f"the new order must name each component of {stage} once: {sorted(current)}")
        return self._change(stage, [current[n] for n in names])

    def patch(self, stage: StageName, name: str, changes: dict[str, Any]) -> DesiredPipeline:
        current = self.components(stage)
        for index, component in enumerate(current):
            if component.instance_name == name:
                updated = component.model_copy(update={"config": {**component.config, **changes}})
                return self._change(stage, [*current[:index], updated, *current[index + 1 :]])
        raise KeyError(name)

    def set_filters(self, components: list[ComponentSpec]) -> DesiredPipeline:
        """The filter stage's new components (users' filters among them). Their outputs reach the
        distribute stage's ``deliver`` sink first, so no match is judged before its route is known."""
        from starling.components.sinks.deliver.sink import with_delivery

        for component in components:  # refused here, before anything changes
            build_component(component.use, component.config, component.instance_name, "filter")
        routed = with_delivery(with_stage(self.desired.spec, "filter", components))
        if routed.sinks != self.desired.spec.sinks:
            self._change("distribute", list(routed.sinks))
        return self._change("filter", components)

    def set_annotators(self, components: list[ComponentSpec]) -> DesiredPipeline:
        """The ingest stage's new annotators (users' watchlists and watchmaps among them)."""
        return self._change("ingest", components)

    def try_filter(self, expression: str, limit: int, sample: int) -> dict[str, Any]:
        """Judge the latest stored alerts with ``expression`` (see ``starling.adql.history``)."""
        from starling.adql.history import try_filter
        from starling.store.base import open_store

        if self.store_location is None or not self.store_location.exists():
            raise StoreError("this controller has no store to read (nothing stored yet?)")
        store = open_store(self.store_location)
        try:
            return try_filter(store, expression, limit, sample)
        finally:
            store.close()

    def set_replicas(self, stage: StageName, replicas: int) -> DesiredPipeline:
        return self._change(stage, replicas=replicas)

    def set_autoscaling(self, stage: StageName, policy: AutoscalePolicy | None) -> DesiredPipeline:
        return self._change(stage, autoscaling=policy)


class NewComponent(BaseModel):
    use: str = Field(min_length=1, description="an installed component (see /components)")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    config: dict[str, Any] = Field(default_factory=dict)
    position: int | None = Field(None, ge=0, description="index in the stage; default: at the end")


class ConfigChange(BaseModel):
    config: dict[str, Any]


class Replicas(BaseModel):
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


class Order(BaseModel):
    components: list[str]


class Changed(BaseModel):
    version: int


def controller_app(controller: Controller) -> FastAPI:
    app = FastAPI(title="Starling controller", version="0.1.0", responses=COMMON_RESPONSES)
    allow_every_method_of_the_path(app)

    anyone = bearer(controller.state)
    operator = bearer(controller.state, "operator")
    refusals: dict[int | str, dict[str, Any]] = {
        401: {"description": "no valid token"},
        403: {"description": "not allowed for this token"},
        404: {"description": "no such component"},
        422: {"description": "refused, with the reason"},
    }

    def guarded(change: Any) -> Changed | JSONResponse:
        try:
            return Changed(version=change().version)
        except ConfigError as exc:
            return JSONResponse({"detail": exc.problems}, status_code=422)
        except KeyError as exc:
            return JSONResponse({"detail": f"no component {exc.args[0]!r} in that stage"}, status_code=404)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "service": "controller"}

    @app.get("/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.get("/availability", response_class=Response, responses=XML_RESPONSE)
    def availability() -> Response:
        return Response(
            availability_xml(True, controller.started_at, "controller running"), media_type="application/xml"
        )

    @app.get("/capabilities", response_class=Response, responses=XML_RESPONSE)
    def capabilities(request: Request) -> Response:
        return Response(capabilities_xml(str(request.base_url).rstrip("/")), media_type="application/xml")

    @app.get("/status", dependencies=[anyone], responses=refusals)
    def status() -> dict[str, Any]:
        return {
            "state": "running",
            "uptime_s": round(time.time() - controller.started_at, 3),
            "pipeline_version": controller.desired.version,
            "replicas": dict(controller.desired.replicas),
            "restarts": controller.backend.restarts(),
            "autoscaler": controller.autoscaler.report(),
        }

    @app.get("/autoscaler", dependencies=[anyone], responses=refusals)
    def autoscaler() -> dict[str, Any]:
        """Policies, the last lag per stage, and the latest decisions with their reasons."""
        return controller.autoscaler.report()

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=[anyone],
        responses={**PROMETHEUS_RESPONSE, **refusals},
    )
    def metrics() -> Response:
        """Replicas and lag per stage, and the autoscaler's decisions, as Prometheus text."""
        lines = ["# TYPE starling_stage_replicas gauge"]
        lines += [
            f'starling_stage_replicas{{stage="{s}"}} {n}' for s, n in controller.desired.replicas.items()
        ]
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
        return Response("\n".join(lines) + "\n", media_type=CONTENT_TYPE_LATEST)

    add_filter_routes(app, controller, anyone, refusals)
    add_watch_routes(app, controller, anyone, refusals)

    @app.get("/stages/{stage}/workers", dependencies=[operator], responses=refusals)
    def workers(stage: StageName) -> list[dict[str, Any]]:
        """Each replica's own status (counts, lag, configuration and its version), as it reports it."""
        found = []
        for worker in controller.backend.workers(stage):
            status = worker.get("/status", timeout_s=2.0)
            found.append({"replica": worker.replica, "alive": worker.alive, "status": status})
        return found

    @app.get("/pipeline", dependencies=[anyone], responses=refusals)
    def pipeline() -> dict[str, Any]:
        """The stages, their components in order, replicas, topics, throughput and lag."""
        return controller.view()

    @app.post(
        "/stages/{stage}/components",
        dependencies=[operator],
        responses=refusals,
        status_code=201,
        response_model=Changed,
    )
    def add(stage: StageName, component: NewComponent) -> Changed | JSONResponse:
        spec = ComponentSpec(use=component.use, name=component.name, config=component.config)
        return guarded(lambda: controller.add(stage, spec, component.position))

    @app.delete(
        "/stages/{stage}/components/{name}",
        dependencies=[operator],
        responses=refusals,
        response_model=Changed,
    )
    def remove(stage: StageName, name: str) -> Changed | JSONResponse:
        return guarded(lambda: controller.remove(stage, name))

    @app.patch(
        "/stages/{stage}/components/{name}",
        dependencies=[operator],
        responses=refusals,
        response_model=Changed,
    )
    def patch(stage: StageName, name: str, change: ConfigChange) -> Changed | JSONResponse:
        return guarded(lambda: controller.patch(stage, name, change.config))

    @app.put("/stages/{stage}/order", dependencies=[operator], responses=refusals, response_model=Changed)
    def order(stage: StageName, body: Order) -> Changed | JSONResponse:
        return guarded(lambda: controller.reorder(stage, body.components))

    @app.put("/stages/{stage}/replicas", dependencies=[operator], responses=refusals, response_model=Changed)
    def replicas(stage: StageName, body: Replicas) -> Changed | JSONResponse:
        return guarded(lambda: controller.set_replicas(stage, body.replicas))

    @app.put(
        "/stages/{stage}/autoscaling", dependencies=[operator], responses=refusals, response_model=Changed
    )
    def set_autoscaling(stage: StageName, policy: AutoscalePolicy) -> Changed | JSONResponse:
        """Turn autoscaling on (or change its policy) for a stage."""
        return guarded(lambda: controller.set_autoscaling(stage, policy))

    @app.delete(
        "/stages/{stage}/autoscaling", dependencies=[operator], responses=refusals, response_model=Changed
    )
    def stop_autoscaling(stage: StageName) -> Changed | JSONResponse:
        """Turn autoscaling off for a stage (its replicas stay as they are)."""
        return guarded(lambda: controller.set_autoscaling(stage, None))

    return app
