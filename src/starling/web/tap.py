"""TAP 1.1 over the store: ``/tap/sync``, and the VOSI resources ``/tap/tables``, ``/tap/capabilities``,
``/tap/availability``.

Parameters are read from the query string or a form (GET or POST), their names in any case, as DALI
says. A query that cannot run is answered with a VOTable error document (``QUERY_STATUS=ERROR``, the
message with the line and column of the fault) and HTTP 400; a result cut at MAXREC carries
``QUERY_STATUS=OVERFLOW`` after its table.

A result is streamed: written chunk by chunk as its rows are read (a query that fails once its rows
are flowing, its time run out, ends with ``QUERY_STATUS=ERROR`` after the table). A bearer token (checked
by the controller) makes the query its user's: it then sees that user's filters' matches too. A client
(a user, else an address) has at most ``ClientSlots.per_client`` queries running at once; more are
answered 429 with Retry-After.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from starling.control.tokens import Principal
from starling.errors import OutageError, StarlingError
from starling.vo.tap_documents import tables_xml, tap_capabilities_xml
from starling.vo.tap_examples import examples_xhtml
from starling.vo.tap_query import TapQueryError, TapResult, TapStore
from starling.vo.tap_schema import TAP_TABLES
from starling.vo.tap_upload import MAX_UPLOAD_BYTES, UploadError, read_uploads
from starling.vo.vosi import availability_xml
from starling.vo.votable import OUTPUT_FORMATS, error_votable, stream_format
from starling.web.identity import viewer
from starling.web.jobs import MAX_DURATION_S, RETENTION
from starling.web.limits import ClientSlots, client_of
from starling.web.parameters import parameters_of, uploaded_parts

log = logging.getLogger(__name__)

DEFAULT_MAXREC = 10_000
HARD_MAXREC = 1_000_000
XML = "text/xml"
VOTABLE = "application/x-votable+xml"
_LANGUAGES = ("ADQL", "ADQL-2.0", "ADQL-2.1")

router = APIRouter(prefix="/tap", tags=["TAP"])
Viewer = Annotated[Principal | None, Depends(viewer)]


def _error(message: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    return Response(error_votable(message), status_code=status, media_type=VOTABLE, headers=headers)


def _maxrec(parameters: dict[str, str]) -> int:
    text = parameters.get("MAXREC")
    if text is None or text == "":
        return DEFAULT_MAXREC
    try:
        value = int(text)
    except ValueError:
        raise TapQueryError(f"MAXREC must be a whole number, not {text!r}") from None
    if value < 0:
        raise TapQueryError("MAXREC must be 0 or more")
    return min(value, HARD_MAXREC)


def _check_request(parameters: dict[str, str]) -> str | None:
    """Why the request is not a query this service runs, or None."""
    request_kind = parameters.get("REQUEST", "doQuery")
    if request_kind.lower() != "doquery":
        return f"REQUEST={request_kind} is not served; REQUEST=doQuery (or none) with LANG=ADQL and QUERY"
    language = parameters.get("LANG", "ADQL")
    if language.upper() not in _LANGUAGES:
        return f"LANG={language} is not served; the language is ADQL"
    if not parameters.get("QUERY"):
        return "QUERY is missing: give an ADQL query"
    return None


@router.api_route("/sync", methods=["GET", "POST"], response_class=Response)
async def sync(request: Request, who: Viewer) -> Response:
    parameters = await parameters_of(request)
    refused = _check_request(parameters)
    if refused:
        return _error(refused)
    query = parameters["QUERY"]
    wanted = parameters.get("RESPONSEFORMAT") or parameters.get("FORMAT")
    try:
        media_type, stream = stream_format(wanted)
    except KeyError:
        return _error(f"RESPONSEFORMAT={wanted} is not served; see /tap/capabilities")
    slots: ClientSlots = request.app.state.client_slots
    client = client_of(request, who)
    if not slots.take(client):
        return _error(
            f"you have {slots.per_client} queries running already; wait for one to end "
            "(or submit to /tap/async, where jobs queue)",
            status=429,
            headers={"Retry-After": "1"},
        )
    try:
        result = await _started(request, parameters, who)
    except BaseException:
        slots.give_back(client)
        raise
    if isinstance(result, Response):
        slots.give_back(client)
        return result

    def finished() -> None:
        result.close()
        slots.give_back(client)
        log.info(f"TAP sync ended ({result.end}): {result.sql}")

    body = stream(result.columns, result.chunks, result.end, query=query)
    return StreamingResponse(body, media_type=media_type, background=BackgroundTask(finished))


async def _started(
    request: Request, parameters: dict[str, str], who: Principal | None
) -> TapResult | Response:
    """The query started (its first rows read), or the error response that says why it could not be."""
    store: TapStore = request.app.state.tap_store
    try:
        maxrec = _maxrec(parameters)
        uploads = []
        if parameters.get("UPLOAD"):
            parts = await uploaded_parts(request, MAX_UPLOAD_BYTES)
            uploads = await run_in_threadpool(read_uploads, parameters["UPLOAD"], parts)
        viewer = who.user if who is not None else None
        return await run_in_threadpool(store.run, parameters["QUERY"], maxrec, None, None, uploads, viewer)
    except (TapQueryError, UploadError) as exc:
        return _error(str(exc))
    except OutageError as exc:
        log.warning(f"TAP query not run: {exc}")
        return _error(f"the store cannot be read now; try again in a moment ({exc})", status=503)
    except StarlingError as exc:
        return _error(str(exc))


@router.get("/tables", response_class=Response)
def tables() -> Response:
    return Response(tables_xml(TAP_TABLES), media_type=XML)


@router.get("/capabilities", response_class=Response)
def capabilities(request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/tap"
    document = tap_capabilities_xml(
        base,
        default_maxrec=DEFAULT_MAXREC,
        hard_maxrec=HARD_MAXREC,
        formats=OUTPUT_FORMATS,
        async_=True,
        examples=True,
        upload=True,
        upload_limit_bytes=MAX_UPLOAD_BYTES,
        execution_duration_s=MAX_DURATION_S,
        retention_period_s=int(RETENTION.total_seconds()),
    )
    return Response(document, media_type=XML)


@router.get("/examples", response_class=Response)
def examples() -> Response:
    return Response(examples_xhtml(), media_type="application/xhtml+xml")


@router.get("/availability", response_class=Response)
def availability(request: Request) -> Response:
    started: float = request.app.state.started
    return Response(
        availability_xml(True, started, "Starling's TAP service is accepting queries"), media_type=XML
    )


def describe() -> dict[str, Any]:
    return {"tap": "/tap", "sync": "/tap/sync", "tables": "/tap/tables", "capabilities": "/tap/capabilities"}
