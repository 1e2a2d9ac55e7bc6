"""The controller's control API, assembled from the routers (each runtime's is ``worker_app``).

Each app keeps what its handlers act on in ``app.state`` (the controller or the runtime, and the
token authority the authorization dependency asks), so one set of module-level routers serves every
app built here.
"""

from __future__ import annotations

from fastapi import FastAPI

from starling.control.api import (
    autoscaler,
    bodies,
    execbroker,
    filters,
    kafka_access,
    pipeline,
    tokens,
    watch,
)
from starling.control.api.common import COMMON_RESPONSES, allow_every_method_of_the_path
from starling.control.api.limits import BodyLimit
from starling.control.auth import AnyOf, SharedSecret, with_metrics_token
from starling.control.controller import Controller


def controller_app(controller: Controller) -> FastAPI:
    """The controller's API; its tokens are those of the controller's store."""
    app = FastAPI(title="Starling controller", version="0.1.0", responses=COMMON_RESPONSES)
    app.state.controller = controller
    # The workers' own secret is a worker's token here: it reads the stored bodies and nothing else.
    workers = SharedSecret(controller.backend.token, role="worker")
    app.state.authority = with_metrics_token(AnyOf(controller.state, workers))
    app.middleware("http")(allow_every_method_of_the_path)
    app.add_middleware(BodyLimit)
    for router in (
        pipeline.probes,
        pipeline.scrapers,
        pipeline.readers,
        pipeline.operators,
        autoscaler.readers,
        autoscaler.operators,
        filters.router,
        watch.router,
        tokens.router,
        kafka_access.router,
        bodies.router,
        execbroker.router,
    ):
        app.include_router(router)
    return app
