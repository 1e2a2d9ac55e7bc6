"""The API of the portal's "My watchlists" page: the user's watchlists (targets the alerts are marked
against) and watchmaps (sky regions), kept by the controller and reached through this service with the
request's own token, as the user's filters are (``my_filters``: the same 401 without a token, 404
without a controller, 503 when it cannot be reached, 403 for a change sent from another site's page,
and the controller's own refusals passed on with its status and detail).

The bodies and answers are the controller's own models (``starling.control.api.watch``), so that this
document says exactly what the controller takes: a body this service would refuse is refused here, a
422 naming the field, before the controller is asked. A watchlist is sent as targets (JSON); the page
reads a user's CSV into them. A watchmap is a MOC as JSON, or a MOC or a probability map as a FITS file
in base64: the controller reads the file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from starling.components.annotators.watch import NAME, Watchlist
from starling.control.api.watch import (
    NewWatchlist,
    NewWatchmap,
    WatchDeleted,
    WatchlistSummary,
    WatchmapSummary,
    WatchPut,
)
from starling.web.api.common import Responses, other_methods, problem
from starling.web.api.my_filters import BODY, PROXIED, Change, Controller, ask

router = APIRouter()

WatchName = Annotated[
    str, Path(pattern=NAME, description="the name you gave it: letters, digits, - and _ (at most 64)")
]
LISTED: Responses = {**PROXIED, 404: problem("this service has no controller")}
LISTS: Responses = {
    **PROXIED,
    404: problem("you have no watchlist of that name, or this service has no controller"),
}
MAPS: Responses = {
    **PROXIED,
    404: problem("you have no watchmap of that name, or this service has no controller"),
}
PUT: Responses = {
    **LISTED,
    **BODY,
    403: problem("over one of your quotas (lists, targets, cells), or a request from another site's page"),
    409: problem("the name is someone else's: choose another"),
    422: problem("not a watchlist or watchmap the controller takes: which field and why"),
}


def _upload(body: NewWatchlist | NewWatchmap) -> dict[str, Any]:
    # Only what the user sent: the controller fills in its own defaults, as it does for its own clients.
    return body.model_dump(mode="json", exclude_unset=True)


# -- watchlists --------------------------------------------------------------------------------------


@router.get("/my/watchlists", tags=["my watchlists"], summary="Your watchlists", responses=LISTED)
def my_watchlists(controller: Controller) -> list[WatchlistSummary]:
    """Your watchlists as the controller lists them (``GET /watchlists``): each one's name, owner, how
    many targets it holds and the radius of the targets that have none of their own (an operator's
    token: everyone's)."""
    return [WatchlistSummary.model_validate(e) for e in ask(controller, "GET", "/watchlists")]


@router.put(
    "/my/watchlists/{name}",
    tags=["my watchlists"],
    summary="Upload a watchlist",
    dependencies=Change,
    responses=PUT,
)
def upload_watchlist(name: WatchName, body: NewWatchlist, controller: Controller) -> WatchPut:
    """Upload a watchlist (``name``, the same as in the path; ``targets``, each a ``name``, ``ra`` and
    ``dec`` in degrees and optionally its own ``radius_arcsec``; ``default_radius_arcsec``), or replace
    the one of that name: alerts that arrive after are marked when they fall within a target's radius."""
    return WatchPut.model_validate(ask(controller, "PUT", f"/watchlists/{name}", _upload(body)))


@router.get(
    "/my/watchlists/{name}",
    tags=["my watchlists"],
    summary="A watchlist's targets",
    responses=LISTS,
    response_model_exclude_unset=True,
)
def my_watchlist(name: WatchName, controller: Controller) -> Watchlist:
    """One of your watchlists with its targets, as the controller keeps it."""
    return Watchlist.model_validate(ask(controller, "GET", f"/watchlists/{name}"))


@router.delete(
    "/my/watchlists/{name}",
    tags=["my watchlists"],
    summary="Remove a watchlist",
    dependencies=Change,
    responses=LISTS,
)
def remove_watchlist(name: WatchName, controller: Controller) -> WatchDeleted:
    """Stop marking alerts with the watchlist; the marks already made stay on the stored alerts."""
    return WatchDeleted.model_validate(ask(controller, "DELETE", f"/watchlists/{name}"))


# -- watchmaps ---------------------------------------------------------------------------------------


@router.get("/my/watchmaps", tags=["my watchlists"], summary="Your watchmaps", responses=LISTED)
def my_watchmaps(controller: Controller) -> list[WatchmapSummary]:
    """Your watchmaps as the controller lists them (``GET /watchmaps``): each one's name, owner,
    description and how many MOC cells its region has (an operator's token: everyone's)."""
    return [WatchmapSummary.model_validate(e) for e in ask(controller, "GET", "/watchmaps")]


@router.put(
    "/my/watchmaps/{name}",
    tags=["my watchlists"],
    summary="Upload a watchmap",
    dependencies=Change,
    responses=PUT,
)
def upload_watchmap(name: WatchName, body: NewWatchmap, controller: Controller) -> WatchPut:
    """Upload a sky region (``name``, the same as in the path; ``kind``: ``moc-json`` with ``moc``,
    depth -> NESTED cells; ``moc-fits`` or ``skymap`` with ``fits_base64``, a skymap cut at its
    ``credible_level``; an optional ``description``), or replace the one of that name: alerts that
    arrive after are marked when they fall inside."""
    return WatchPut.model_validate(ask(controller, "PUT", f"/watchmaps/{name}", _upload(body)))


@router.delete(
    "/my/watchmaps/{name}",
    tags=["my watchlists"],
    summary="Remove a watchmap",
    dependencies=Change,
    responses=MAPS,
)
def remove_watchmap(name: WatchName, controller: Controller) -> WatchDeleted:
    """Stop marking alerts with the watchmap; the marks already made stay on the stored alerts."""
    return WatchDeleted.model_validate(ask(controller, "DELETE", f"/watchmaps/{name}"))


other_methods(router, "/my/watchlists", ("GET",))
other_methods(router, "/my/watchlists/{name}", ("GET", "PUT", "DELETE"))
other_methods(router, "/my/watchmaps", ("GET",))
other_methods(router, "/my/watchmaps/{name}", ("PUT", "DELETE"))
