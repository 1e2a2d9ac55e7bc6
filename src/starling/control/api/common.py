"""What every control API shares: response documentation, refusals, the 405 ``Allow`` fix, VOSI.

A refusal is an ``HTTPException``: FastAPI answers it as ``{"detail": ...}`` with its status, the
body every client of these APIs reads, so a handler can return its typed model or raise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

from fastapi import Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.middleware.base import RequestResponseEndpoint
from starlette.routing import Match

from starling.control.state import DesiredPipeline
from starling.errors import ConfigError
from starling.vo.vosi import capabilities_xml

Responses = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    """Why a request was refused: a sentence, or the problems one by one (``loc``, ``msg``)."""

    detail: list[dict[str, Any]] | str


class Changed(BaseModel):
    version: int = Field(description="the desired pipeline's version that carries the change")


def problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# Every route may meet a body that is not JSON at all; FastAPI answers 400 then.
COMMON_RESPONSES: Responses = {400: {"description": "the request body is not valid JSON"}}
AUTH_RESPONSES: Responses = {
    401: problem("no valid token"),
    403: problem("not allowed for this token"),
}
REFUSED: Responses = {422: problem("refused, with the reason")}
XML_RESPONSE: Responses = {
    200: {
        "description": "an IVOA VOSI document",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}
PROMETHEUS_RESPONSE: Responses = {
    200: {
        "description": "Prometheus text exposition",
        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    }
}


# Optimistic concurrency for users' objects (filters, watchlists, watchmaps): each is read with an ``ETag``,
# the digest of what it holds, and a change or removal sent with it as ``If-Match`` is refused (412) when
# the object changed meanwhile, so no one overwrites a change they never saw.
IfMatch = Annotated[str | None, Header(description="the ETag you read: refused (412) if it changed since")]


def entity_tag(body: Any) -> str:
    """An object's entity tag: the digest of its content (it changes with any change to it)."""
    text = json.dumps(body, sort_keys=True, default=str)
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:20]}"'


def check_if_match(if_match: str | None, body: Any, noun: str) -> None:
    """412 if the caller read another state of the object (``body``: None, it does not exist) than the one
    it would change; no ``If-Match``: no check."""
    if if_match is None:
        return
    if body is None:
        refuse(412, f"the {noun} does not exist (any more); read it again")
    if if_match.strip() != "*" and entity_tag(body) not in if_match:
        refuse(412, f"the {noun} changed since you read it (it is now {entity_tag(body)}); read it again")


def refuse(status: int, detail: Any) -> NoReturn:
    raise HTTPException(status, detail)


@contextmanager
def config_refused() -> Iterator[None]:
    """A ``ConfigError`` inside becomes a 422 listing its problems."""
    try:
        yield
    except ConfigError as exc:
        refuse(422, exc.problems)


def changed(change: Callable[[], DesiredPipeline]) -> Changed:
    """Apply a change to the desired pipeline; 422 if it is refused, 404 if it names no component."""
    try:
        with config_refused():
            return Changed(version=change().version)
    except KeyError as exc:
        refuse(404, f"no component {exc.args[0]!r} in that stage")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _methods_served(request: Request) -> list[str]:
    """Every method some route serves at this request's path, asked of the routes themselves
    (included routers are nested, so a flat walk of ``app.routes`` would miss their routes)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def allow_every_method_of_the_path(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """On a 405, list in ``Allow`` every method any route of that path serves (HTTP semantics).

    Starlette answers with the methods of the first matching route only, so a path served by two
    routes (``GET /config`` and ``PATCH /config``) would advertise half of what it accepts.
    """
    response = await call_next(request)
    if response.status_code == 405:
        methods = _methods_served(request)
        if methods:
            response.headers["Allow"] = ", ".join(sorted(methods))
    return response


async def capabilities(request: Request) -> Response:
    """IVOA VOSI capabilities."""
    return Response(capabilities_xml(str(request.base_url).rstrip("/")), media_type="application/xml")
