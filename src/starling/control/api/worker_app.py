"""The control API of one runtime (a stage worker, or the embedded pipeline), assembled from the worker's
routers. It keeps what its handlers act on in ``app.state`` (the runtime, and the token authority the
authorization dependency asks), as the controller's does."""

from __future__ import annotations

from fastapi import FastAPI

from starling.control.api import worker
from starling.control.api.common import COMMON_RESPONSES, allow_every_method_of_the_path
from starling.control.api.limits import BodyLimit
from starling.control.auth import TokenAuthority
from starling.core.live import LiveRuntime


def worker_app(runtime: LiveRuntime, authority: TokenAuthority) -> FastAPI:
    """The control API of one runtime. Everything but the probes and VOSI needs an operator token."""
    app = FastAPI(title=f"Starling {runtime.stage} worker", version="0.1.0", responses=COMMON_RESPONSES)
    app.state.runtime = runtime
    app.state.authority = authority
    app.middleware("http")(allow_every_method_of_the_path)
    app.add_middleware(BodyLimit)
    app.include_router(worker.probes)
    app.include_router(worker.scraped)
    app.include_router(worker.router)
    return app
