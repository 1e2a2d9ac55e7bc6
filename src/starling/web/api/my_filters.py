"""The API of the portal's "My filters" page: the fields a filter may name, an expression checked and
tried on history here, and the user's own filters at the controller, through this service.

Checking and trying need no token and no controller: the check is the filter language's own front end
(``compile_filter``, the same errors at the same line and column as the controller's), and a trial runs
the controller's trial (``starling.control.trial.run_trial``) on this service's TAP store, holding one
of the client's query slots as a TAP query does. A signed-out page can do both.

The ``/api/my`` routes pass the request's bearer token on to the controller (``ControllerClient``),
which decides whose filters they are; its refusals come back with its status and detail, and no
answer from it (or no controller at all) is a 503. A request without a token is a 401 here: the
controller is never asked with none, nor with this service's own ``$STARLING_TOKEN``.

Cross-site requests: the token travels in the ``Authorization`` header, never in a cookie, so no page of
another site can make a browser send it (and a cross-site request with that header needs a CORS
preflight this service never grants). As a second guard, a request that changes something at the
controller (``POST``, ``PUT``, ``PATCH``, ``DELETE``: a filter here, a watchlist or a watchmap in
``my_watch``) whose ``Origin`` header is present and names another host than
the one the request was sent to (its ``Host`` header) is refused, 403. The host and port are compared,
not the scheme: behind a proxy that ends TLS the browser says ``https`` and this service sees ``http``
(such a proxy must pass the ``Host`` header on).
"""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Request
from pydantic import BaseModel, Field

from starling.adql.fields import catalogue
from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.control.client import ControllerClient
from starling.control.trial import run_trial, trial_queries
from starling.errors import ControllerRefusedError, ControllerUnreachableError, OutageError, StoreError
from starling.vo.tap_query import TapQueryError
from starling.web.api.common import TOKEN, Responses, Store, Viewer, other_methods, problem
from starling.web.limits import ClientSlots, client_of

router = APIRouter()

MAX_EXPRESSION = 20_000  # as the controller takes one
MAX_TRIAL = 20_000  # alerts one trial judges, as the controller's trials
MAX_SAMPLE = 100
# A user's filter by the name its owner gave it, or (an operator's token) any filter by its component
# name, ``<user>.<name>``; never a name that is dots alone, so the controller's path stays its own.
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"
CONTROLLER_TIMEOUT_S = 30.0  # a change waits for the stages to apply it (5 s each) before it answers

BODY: Responses = {400: problem("a body that cannot be read (not UTF-8)")}
CHECKED: Responses = {**BODY, 422: problem("not a filter: where and why")}
PROXIED: Responses = {
    401: problem("no token (sign in), or one the controller does not know"),
    403: problem("refused by the controller (a quota), or a request from another site's page"),
    404: problem("you have no filter of that name, or this service has no controller"),
    503: problem("the controller cannot be reached now"),
}


class FilterField(BaseModel):
    name: str = Field(description="as a filter names it (an annotator's field: <annotator>.<key>)")
    type: str = Field(description="float, int or string")
    unit: str
    description: str


class Expression(BaseModel):
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION, description="an ADQL condition")


class Checked(BaseModel):
    ok: bool
    message: str | None = Field(None, description="why it is not a filter (absent when ok)")
    line: int | None = Field(None, description="where the fault starts: 1-based line")
    column: int | None = Field(None, description="and 1-based column")


class Trial(Expression):
    limit: int = Field(
        10_000, ge=1, le=MAX_TRIAL, description="how many of the latest stored alerts to judge"
    )
    sample: int = Field(20, ge=0, le=MAX_SAMPLE, description="how many of the matches to show")


class TriedAlert(BaseModel):
    survey: str
    alert_id: int
    object_id: str
    mjd: float


class Tried(BaseModel):
    alerts_examined: int = Field(description="the latest stored alerts judged (fewer if the store has fewer)")
    matched: int
    fraction: float = Field(description="matched / alerts_examined (0 when none was examined)")
    newest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    oldest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    sample: list[TriedAlert] = Field(description="the newest of the matched alerts")
    query: str = Field(description="the trial's matches as a TAP query (ADQL), to run at /tap")


@router.get("/fields", tags=["filter language"], summary="The fields a filter may name")
def get_fields() -> list[FilterField]:
    """Every field of the filter language, built-in fields first, each once: an annotator whose name
    has a hyphen is listed under its underscore alias (``history_summary.peak_mag``), which a filter
    writes without quotes; a ``*`` in a name stands for a name of the filter's choosing (a band)."""
    listed: dict[str, FilterField] = {}
    for field in catalogue().all():
        if "-" not in field.name:
            listed.setdefault(
                field.name, FilterField(**{k: getattr(field, k) for k in FilterField.model_fields})
            )
    return list(listed.values())


@router.post(
    "/filters/check",
    tags=["filter language"],
    summary="Check a filter",
    response_model_exclude_none=True,
    responses={**BODY, 422: problem("no expression, or one too long")},
)
def check_filter(body: Expression) -> Checked:
    """Whether the expression is a filter the controller would take: ``ok``, or the first fault with
    its line and column (a syntax error, an unknown field with the nearest known ones, a type that
    does not fit). Nothing is stored or sent anywhere."""
    try:
        compile_filter(body.expression)
    except FilterSyntaxError as exc:
        return Checked(ok=False, message=exc.message, line=exc.line, column=exc.column)
    return Checked(ok=True)


@router.post(
    "/filters/try",
    tags=["filter language"],
    summary="Try a filter on history",
    responses={
        **TOKEN,
        **CHECKED,
        429: problem("you have queries running already"),
        503: problem("the store cannot be read now, or the trial ran out of time"),
    },
)
def try_filter(body: Trial, store: Store, who: Viewer, request: Request) -> Tried:
    """How many of the latest ``limit`` stored alerts the filter matches, and the newest ``sample`` of
    those (the controller's trial, on this service's store: what it counts is what the ``query`` in
    TAP returns). A fault in the filter is a 422 naming its line and column."""
    try:
        queries = trial_queries(body.expression, body.limit)
    except FilterSyntaxError as exc:
        raise HTTPException(422, [exc.problem()]) from None
    slots: ClientSlots = request.app.state.client_slots
    client = client_of(request, who)
    if not slots.take(client):
        raise HTTPException(
            429, "you have queries running already; try again when one ends", {"Retry-After": "1"}
        )
    started = time.monotonic()
    try:
        found = run_trial(store, queries, body.sample)
    except (OutageError, StoreError) as exc:
        raise HTTPException(503, f"the store cannot be read now; try again ({exc})") from None
    except TapQueryError as exc:
        if time.monotonic() - started < store.timeout_s:
            raise  # not the time limit: this service's own fault, a 500 with its traceback in the log
        raise HTTPException(503, f"the trial ran out of time; try a smaller limit ({exc})") from None
    finally:
        slots.give_back(client)
    return Tried.model_validate(found)


# -- the user's filters, at the controller -----------------------------------------------------------


def controller_of(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> ControllerClient:
    """The controller, asked with the request's own token: 401 without one (an empty token would let
    the client fall back to this service's ``$STARLING_TOKEN``), 404 when this service has none (there
    are no filters here to find: a 5xx would say this service failed)."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not authorization or not authorization.startswith("Bearer ") or not token:
        raise HTTPException(
            401,
            "sign in: the controller is asked with your own token (Authorization: Bearer <token>)",
        )
    url = request.app.state.identities.controller_url
    if url is None:
        raise HTTPException(
            404,
            "this service was started without a controller (--controller): it has no filters, "
            "watchlists, watchmaps or pipeline to show",
        )
    return ControllerClient(url, token, timeout_s=CONTROLLER_TIMEOUT_S)


def same_origin(request: Request, origin: Annotated[str | None, Header()] = None) -> None:
    """403 for a change sent from a page of another site (see the module's docstring)."""
    if origin is None:
        return
    host = request.headers.get("host", "").lower()
    if not host or urlsplit(origin).netloc.lower() != host:
        raise HTTPException(403, f"a change is taken from this service's own pages, not {origin!r}")


Controller = Annotated[ControllerClient, Depends(controller_of)]
Change = [Depends(same_origin)]
FilterName = Annotated[str, Path(pattern=NAME_PATTERN, description="the name you gave the filter")]


def ask(controller: ControllerClient, method: str, path: str, body: Any = None) -> Any:
    """The controller's answer, its refusal as this service's own (status and detail), or a 503."""
    try:
        return controller.request(method, path, body)
    except ControllerRefusedError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    except ControllerUnreachableError as exc:
        raise HTTPException(503, f"the controller cannot be reached now; try again ({exc})") from None


@router.get("/my/filters", tags=["my filters"], summary="Your filters", responses=PROXIED)
def my_filters(controller: Controller) -> Any:
    """Your filters as the controller lists them (``GET /filters``), with their counts: seen, matched,
    held back, delivered, failed."""
    return ask(controller, "GET", "/filters")


@router.post(
    "/my/filters",
    tags=["my filters"],
    summary="Make a filter live",
    status_code=201,
    dependencies=Change,
    responses={**PROXIED, **BODY, 409: problem("you have a filter of that name")},
)
def make_live(
    controller: Controller,
    body: Annotated[dict[str, Any], Body(description="as the controller's POST /filters takes it")],
) -> Any:
    """Submit a filter (``name``, ``expression``, optionally ``description``, ``outputs`` such as
    ``[{"type": "webhook", "url": ...}]`` or ``[{"type": "kafka", "format": "json"}]``, and caps): the
    controller checks it, outputs included, and it goes live for the alerts that arrive after."""
    return ask(controller, "POST", "/filters", body)


@router.patch(
    "/my/filters/{name}",
    tags=["my filters"],
    summary="Change a filter",
    dependencies=Change,
    responses={**PROXIED, **BODY},
)
def change(
    name: FilterName,
    controller: Controller,
    body: Annotated[dict[str, Any], Body(description="as the controller's PATCH /filters/{name} takes it")],
) -> Any:
    """Change some of a filter's settings (``expression``, ``outputs``, caps ...): the new version
    judges the alerts that arrive after."""
    return ask(controller, "PATCH", f"/filters/{name}", body)


@router.post(
    "/my/filters/{name}/pause",
    tags=["my filters"],
    summary="Pause a filter",
    dependencies=Change,
    responses=PROXIED,
)
def pause(name: FilterName, controller: Controller) -> Any:
    """Stop judging alerts with the filter, keeping it (and its stored matches) to resume."""
    return ask(controller, "POST", f"/filters/{name}/pause")


@router.post(
    "/my/filters/{name}/resume",
    tags=["my filters"],
    summary="Resume a filter",
    dependencies=Change,
    responses=PROXIED,
)
def resume(name: FilterName, controller: Controller) -> Any:
    """Judge the alerts that arrive from now on again: a filter paused by you, or by the filter stage
    after repeated failures."""
    return ask(controller, "POST", f"/filters/{name}/resume")


@router.delete(
    "/my/filters/{name}",
    tags=["my filters"],
    summary="Remove a filter",
    dependencies=Change,
    responses=PROXIED,
)
def remove(name: FilterName, controller: Controller) -> Any:
    """Remove the filter from the pipeline; its stored matches stay."""
    return ask(controller, "DELETE", f"/filters/{name}")


other_methods(router, "/my/filters", ("GET", "POST"))
other_methods(router, "/my/filters/{name}", ("PATCH", "DELETE"))
