"""The web service's application: TAP over one store, the portal's data API (``/api``), and a page that
says what is served."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from starling.vo.tap_query import TapStore
from starling.web import api, identity, pages, tap, tap_async
from starling.web.identity import Identities
from starling.web.jobs import Jobs
from starling.web.limits import DEFAULT_PER_CLIENT, ClientSlots

log = logging.getLogger(__name__)


def web_app(
    store: str | Path,
    jobs_dir: Path,
    query_timeout_s: float = 30.0,
    controller_url: str | None = None,
    queries_per_client: int = DEFAULT_PER_CLIENT,
    cutouts: Path | None = None,
) -> FastAPI:
    """The service over ``store``; asynchronous jobs and their results are kept in ``jobs_dir``; tokens
    are checked by the controller at ``controller_url`` (None: only anonymous requests); the alerts'
    cutouts are read from ``cutouts`` (None: the API serves none)."""
    app = FastAPI(title="Starling web", summary="TAP and ADQL over Starling's store, and its data API")
    app.state.identities = Identities(controller_url)
    app.state.client_slots = ClientSlots(queries_per_client)
    # Every client may hold its slots at once, and jobs run beside them: connections for all of them.
    app.state.tap_store = TapStore(store, query_timeout_s, pool_size=queries_per_client + 4)
    app.state.tap_jobs = Jobs(jobs_dir, app.state.tap_store, tap.DEFAULT_MAXREC, tap.HARD_MAXREC)
    app.state.cutouts = api.CutoutSource(store, cutouts)
    app.state.started = time.time()
    app.include_router(tap.router)
    app.include_router(tap_async.router)
    app.include_router(api.router)
    app.include_router(identity.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")

    @app.get("/", response_model=None)
    def root(request: Request) -> dict[str, Any] | RedirectResponse:
        if "text/html" in request.headers.get("accept", ""):  # a browser: the portal
            return RedirectResponse("/search", status_code=303)
        return {
            "service": "starling web",
            "store": app.state.tap_store.shown,
            **tap.describe(),
            **api.describe(),
        }

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a traceback to a user: the log keeps it.
        log.exception(f"{request.method} {request.url.path} failed")
        return JSONResponse(
            {"detail": "the service failed to answer; the operator's log has why"}, status_code=500
        )

    return app


def close_web_app(app: FastAPI) -> None:
    """Stop the jobs (queued and running ones run again at the next start) and close the store's readers."""
    app.state.tap_jobs.close()
    app.state.cutouts.close()
    app.state.tap_store.close()
