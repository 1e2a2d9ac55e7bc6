"""The portal's pages: plain HTML and scripts (``starling/web/portal``), which read everything they show
from the data API (``/api``), so a page shows nothing the API would not give the same viewer. The
browser libraries are installed from the portal's npm lockfile by ``scripts/setup`` (no CDN).

- ``/search``: an object or an alert by id, a cone, a TAP query;
- ``/objects/{object_id}``: the object's page (redirected to ``/objects/{survey}/{object_id}``, the
  survey found in the store);
- ``/filters``: the signed-in user's filters (counts, pause, remove, their latest matches), and an
  editor that checks a filter as it is typed, tries it on the stored alerts and makes it live;
- ``/watch``: the signed-in user's watchlists (uploaded from a CSV, their targets shown) and watchmaps
  (a MOC or a skymap uploaded), each removable;
- ``/pipeline``: the stages, their replicas, throughput, lag and components, the autoscaler's
  decisions and the dead letters by reason, as the signed-in token may see them; an operator's changes;
- ``/static/...``: the pages' scripts, styles and libraries.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from starling.adql.literals import adql_string
from starling.errors import StarlingError
from starling.vo.tap_query import TapStore

PORTAL = Path(__file__).parent / "portal"
PAGES = PORTAL / "pages"
STATIC = PORTAL / "static"

router = APIRouter(tags=["portal"], include_in_schema=False)


def static_files() -> StaticFiles:
    """The pages' scripts and styles; ``check_dir=False`` so that the service starts (and says what is
    missing) even before ``scripts/setup`` has installed the browser libraries."""
    return StaticFiles(directory=STATIC, check_dir=False)


def _page(name: str) -> FileResponse:
    # Pages hold no user data (the scripts fetch it), so they may be cached briefly.
    return FileResponse(PAGES / name, media_type="text/html", headers={"Cache-Control": "max-age=60"})


@router.get("/search")
def search_page() -> FileResponse:
    return _page("search.html")


@router.get("/filters")
def filters_page() -> FileResponse:
    return _page("filters.html")


@router.get("/watch")
def watch_page() -> FileResponse:
    return _page("watch.html")


@router.get("/pipeline")
def pipeline_page() -> FileResponse:
    return _page("pipeline.html")


@router.get("/objects/{survey}/{object_id}")
def object_page(survey: str, object_id: str) -> FileResponse:
    return _page("object.html")


@router.get("/objects/{object_id}")
async def object_by_id(object_id: str, request: Request) -> Response:
    """The page of the object of that id, whichever survey has it."""
    store: TapStore = request.app.state.tap_store
    try:
        query = f"SELECT survey FROM starling.objects WHERE object_id = {adql_string(object_id)}"
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        found = await run_in_threadpool(lambda: store.run(query, 2).all_rows())
    except StarlingError as exc:
        raise HTTPException(503, f"the store cannot be read now: {exc}") from None
    if not found:
        raise HTTPException(404, f"no object {object_id!r} in the store")
    return RedirectResponse(f"/objects/{found[0][0]}/{object_id}", status_code=307)
