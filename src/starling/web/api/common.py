"""What the data API's resources share: the parameters every route checks, the refusals it documents
(with the 405 of a method a path does not serve), and reading rows through TAP's store.

Every read is an ADQL query run by ``TapStore.run``: TAP's read-only connections, its time limit, and
the viewer's access to filter matches held by the database. A query is built only from parameters
already checked against their columns' types (a survey from its two names, an id from its pattern or
range, a number parsed), with strings written as ADQL literals (``starling.adql.literals``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from starling.control.tokens import Principal
from starling.errors import OutageError, StoreError
from starling.vo.tap_query import TapQueryError, TapStore
from starling.web.identity import viewer

log = logging.getLogger(__name__)

Responses = dict[int | str, dict[str, Any]]

# The largest id of a bigint column: a larger one names nothing, and PostgreSQL would refuse the query.
MAX_ID = 2**63 - 1
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000
# An object's history, per table, in one answer: the longest real one is ~400 detections and ~800
# forced points; a light curve past this is cut (``truncated``) rather than held whole in memory.
MAX_HISTORY_ROWS = 50_000
OBJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$"

Survey = Literal["ztf", "rubin"]
SurveyPath = Annotated[Survey, Path(description="the survey: ztf or rubin")]
ObjectIdPath = Annotated[
    str,
    Path(
        pattern=OBJECT_ID_PATTERN,
        description="the survey's identifier of the object (ZTF objectId, e.g. ZTF18abudxnw; Rubin "
        "diaObjectId; a Rubin solar-system object is sso-<ssObjectId>)",
    ),
]
AlertIdPath = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="the survey's identifier of the alert (ZTF candid, Rubin diaSourceId)"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"rows in one answer (at most {MAX_PAGE})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows skipped before the first one")]


class Problem(BaseModel):
    """Why a request was refused or could not be answered: a sentence, or FastAPI's list of the
    parameters at fault (``loc``, ``msg``)."""

    detail: list[dict[str, Any]] | str


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


UNAVAILABLE: Responses = {503: problem("the store cannot be read now (down, or too slow); try again")}
NOT_FOUND: Responses = {404: problem("no such thing in the store; the message says what")}
TOKEN: Responses = {
    401: problem("a token was sent that is not valid (none is needed to read the public data)"),
    503: problem("the store cannot be read now, or the token cannot be checked now; try again"),
}


def tap_store(request: Request) -> TapStore:
    store: TapStore = request.app.state.tap_store
    return store


Store = Annotated[TapStore, Depends(tap_store)]
Viewer = Annotated[Principal | None, Depends(viewer)]


def user_of(who: Principal | None) -> str | None:
    """The viewer as TAP names it: a user's name, None without a token."""
    return who.user if who is not None else None


@dataclass
class Rows:
    """A query's rows as dicts by column name; ``more``: there were rows beyond ``maxrec``."""

    rows: list[dict[str, Any]]
    more: bool


def read(store: TapStore, adql: str, maxrec: int, viewer: str | None = None) -> Rows:
    """Run ``adql`` (built by this API, never a user's text) for ``viewer``. The store down, or the query
    out of time: 503. Any other failure is this API's own fault and reaches the app's handler (a 500,
    logged with its traceback, which the user never sees)."""
    started = time.monotonic()
    try:
        result = store.run(adql, maxrec, viewer=viewer)
        found = result.all_rows()
    except (OutageError, StoreError) as exc:
        log.warning(f"API read failed: {exc}")
        raise HTTPException(503, f"the store cannot be read now; try again in a moment ({exc})") from None
    except TapQueryError as exc:
        if time.monotonic() - started < store.timeout_s:
            raise
        raise HTTPException(503, f"the store did not answer in time; try again ({exc})") from None
    if result.end.error is not None:
        raise HTTPException(503, f"the store did not answer in time; try again ({result.end.error})")
    names = [column.name for column in result.columns]
    return Rows([dict(zip(names, row, strict=True)) for row in found], result.end.overflow)


def not_found(message: str) -> HTTPException:
    return HTTPException(404, message)


def one(rows: Rows, missing: Callable[[], str]) -> dict[str, Any]:
    """The one row of a lookup by key; 404 with ``missing()`` when there is none."""
    if not rows.rows:
        raise not_found(missing())
    return rows.rows[0]


def other_methods(router: APIRouter, path: str, allowed: tuple[str, ...]) -> None:
    """A method ``path`` does not serve is a 405 whose ``Allow`` names every method it serves: each
    method is a route of its own, and the router would name only the first route's."""
    every = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    served = (*allowed, "HEAD") if "GET" in allowed else allowed  # a GET route answers HEAD too

    def not_allowed() -> JSONResponse:
        return JSONResponse({"detail": "Method Not Allowed"}, 405, {"Allow": ", ".join(allowed)})

    others = [m for m in every if m not in served]
    router.add_api_route(path, not_allowed, methods=others, include_in_schema=False)
