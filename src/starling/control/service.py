"""The control API every runtime serves: a Kafka stage worker, or the embedded pipeline.

``/health`` answers while the process lives; ``/ready`` once it consumes; ``/status`` gives state,
counts, lag, partitions and the configuration version; ``/metrics`` is Prometheus text read from the
runtime's own counts at scrape time; ``GET``/``PATCH /config`` and ``PUT /components`` change the
components live (validated first; 422 naming the field); ``POST /pause``, ``/resume``, ``/drain``;
and the IVOA VOSI ``/availability`` and ``/capabilities``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from starling.control.auth import TokenAuthority
from starling.control.state import Principal, Role
from starling.core.live import LiveRuntime
from starling.core.spec import ComponentSpec
from starling.errors import ConfigError
from starling.vo.vosi import availability_xml, capabilities_xml


class ConfigPatch(BaseModel):
    """Change some fields of one component's config."""

    component: str = Field(description="the component's instance name in this stage")
    config: dict[str, Any] = Field(description="the fields to change, validated by the component's own model")


class ConfigAccepted(BaseModel):
    version: int = Field(description="the configuration version that carries the change")
    applied: bool = Field(description="false until the worker reaches the next batch boundary")


class Problem(BaseModel):
    detail: list[dict[str, Any]] | str


def _refused(exc: ConfigError) -> JSONResponse:
    return JSONResponse({"detail": exc.problems}, status_code=422)


class _WorkerCollector(Collector):
    def __init__(self, worker: LiveRuntime) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w, stage = self.worker, self.worker.stage
        messages = CounterMetricFamily("starling_messages_in", "Messages consumed", labels=["stage"])
        messages.add_metric([stage], w.stats.messages_in)
        yield messages
        per_component = CounterMetricFamily(
            "starling_component_alerts",
            "Alerts per component and direction",
            labels=["stage", "component", "direction"],
        )
        for name, counts in w.stats.stages.items():
            per_component.add_metric([stage, name, "in"], counts.alerts_in)
            per_component.add_metric([stage, name, "out"], counts.alerts_out)
            per_component.add_metric([stage, name, "failed"], counts.failed)
        yield per_component
        dead = CounterMetricFamily("starling_dead_letters", "Dead letters written", labels=["stage"])
        dead.add_metric([stage], len(w.dead_letters))
        yield dead
        lag = w.lag()
        if lag is not None:
            gauge = GaugeMetricFamily(
                "starling_consumer_lag", "Messages behind the end of the input", labels=["stage"]
            )
            gauge.add_metric([stage], lag)
            yield gauge
        up = GaugeMetricFamily(
            "starling_uptime_seconds", "Seconds since the worker started", labels=["stage"]
        )
        up.add_metric([stage], time.time() - w.started_at)
        yield up


# Every route may meet a body that is not JSON at all; FastAPI answers 400 then.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the request body is not valid JSON"}
}


XML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an IVOA VOSI document",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}
PROMETHEUS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition",
        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    }
}


def allow_every_method_of_the_path(app: FastAPI) -> None:
    """On a 405, list in ``Allow`` every method any route of that path serves (HTTP semantics).

    Starlette answers with the methods of the first matching route only, so a path served by two
    routes (``GET /config`` and ``PATCH /config``) would advertise half of what it accepts.
    """

    @app.middleware("http")
    async def fix_allow(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if response.status_code == 405:
            methods: set[str] = set()
            for route in app.routes:
                matches = getattr(route, "path_regex", None)
                if matches is not None and matches.match(request.url.path):
                    methods |= set(getattr(route, "methods", None) or ())
            if methods:
                response.headers["Allow"] = ", ".join(sorted(methods))
        return response


def bearer(authority: TokenAuthority, role: Role | None = None) -> Any:
    """A FastAPI dependency: 401 without a valid bearer token, 403 without the role."""

    def check(authorization: Annotated[str | None, Header()] = None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "a token is required: 'Authorization: Bearer <token>'")
        found = authority.principal(authorization.removeprefix("Bearer ").strip())
        if found is None:
            raise HTTPException(401, "unknown token")
        if role == "operator" and found.role != "operator":
            raise HTTPException(403, "this needs an operator token")
        return found

    return Depends(check)


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid token"},
    403: {"description": "not allowed for this token"},
}


def worker_app(worker: LiveRuntime, authority: TokenAuthority) -> FastAPI:
    """The control API of one runtime. Everything but the probes and VOSI needs an operator token."""
    app = FastAPI(
        title=f"Starling {worker.stage} worker",
        version="0.1.0",
        responses=COMMON_RESPONSES,
    )
    allow_every_method_of_the_path(app)
    operator = bearer(authority, "operator")
    guarded: dict[str, Any] = {"dependencies": [operator], "responses": AUTH_RESPONSES}
    registry = CollectorRegistry()
    registry.register(_WorkerCollector(worker))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "stage": worker.stage}

    @app.get("/ready", responses={503: {"description": "not ready yet (starting, draining or stopped)"}})
    def ready() -> JSONResponse:
        ok = worker.ready
        return JSONResponse({"ready": ok, "state": worker.state}, status_code=200 if ok else 503)

    @app.get("/status", **guarded)
    def status() -> dict[str, Any]:
        return worker.status()

    @app.post("/pause", **guarded)
    def pause() -> dict[str, str]:
        """Stop taking new messages (the group membership and the assignment are kept)."""
        worker.pause()
        return {"state": worker.state}

    @app.post("/resume", **guarded)
    def resume() -> dict[str, str]:
        worker.resume()
        return {"state": worker.state}

    @app.get("/config", **guarded)
    def get_config() -> dict[str, Any]:
        """The stage's components in order, with their configs, and the configuration version."""
        return {
            "stage": worker.stage,
            "version": worker.config_version,
            "pending_version": worker.pending_version,
            "components": [c.model_dump() for c in worker.component_specs],
        }

    @app.patch(
        "/config",
        response_model=ConfigAccepted,
        dependencies=[operator],
        responses={**AUTH_RESPONSES, 404: {"model": Problem}, 422: {"model": Problem}},
    )
    def patch_config(change: ConfigPatch) -> ConfigAccepted | JSONResponse:
        """Validate a config change and apply it live (next batch boundary), or refuse it with the reason."""
        try:
            version = worker.patch_component(change.component, change.config)
        except KeyError:
            names = [c.instance_name for c in worker.component_specs]
            return JSONResponse(
                {"detail": f"no component {change.component!r} in this stage; it has {names}"}, 404
            )
        except ConfigError as exc:
            return _refused(exc)
        return ConfigAccepted(version=version, applied=False)

    @app.put(
        "/components",
        response_model=ConfigAccepted,
        dependencies=[operator],
        responses={**AUTH_RESPONSES, 422: {"model": Problem}},
    )
    def put_components(components: list[ComponentSpec]) -> ConfigAccepted | JSONResponse:
        """Replace the stage's component list (add, remove, reorder) while it runs."""
        try:
            version = worker.propose_components(components)
        except ConfigError as exc:
            return _refused(exc)
        return ConfigAccepted(version=version, applied=False)

    @app.post("/drain", status_code=202, **guarded)
    def drain() -> dict[str, str]:
        """Finish and commit the batch in hand, leave the consumer group, then stop."""
        worker.drain()
        return {"state": worker.state}

    @app.get("/availability", response_class=Response, responses=XML_RESPONSE)
    def availability() -> Response:
        """IVOA VOSI availability."""
        return Response(
            availability_xml(
                worker.ready and worker.state == "running",
                worker.started_at,
                f"{worker.stage}: {worker.state}",
            ),
            media_type="application/xml",
        )

    @app.get("/capabilities", response_class=Response, responses=XML_RESPONSE)
    def capabilities(request: Request) -> Response:
        """IVOA VOSI capabilities."""
        return Response(capabilities_xml(str(request.base_url).rstrip("/")), media_type="application/xml")

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=[operator],
        responses={**PROMETHEUS_RESPONSE, **AUTH_RESPONSES},
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class BackgroundServer:
    """Serves an ASGI app on 127.0.0.1 from a daemon thread; ``port`` 0 picks a free one."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout_s: float = 10.0) -> int:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=5)
