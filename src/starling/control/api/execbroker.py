"""The IVOA ExecutionBroker on the controller: ask to run your own processing, accept an offer, follow it.

``POST /offersets`` (an offer-set request, any dialect of the draft, JSON or YAML) answers an offer set:
YES with offers (sessions in phase OFFERED, each holding what it offers until it expires) or NO with
messages saying why. ``GET /offersets/{uuid}``, ``GET /sessions`` (yours), ``GET /sessions/{uuid}``, and
``POST /sessions/{uuid}`` with an update (``{kind: uri:enum-value-update, path: phase, value: ACCEPTED}``)
to accept, reject or cancel: an update a session does not allow now is a 409 saying what it allows.

Every answer is YAML unless the client asks for JSON only (``Accept``), as the draft says. Users see only
their own offer sets and sessions (another's is a 404); every token may ask.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from starling.control.api.auth import ANYONE, Anyone
from starling.control.api.common import AUTH_RESPONSES, Responses, problem, refuse
from starling.control.api.deps import Control
from starling.vo.execbroker.broker import NotFoundError
from starling.vo.execbroker.sessions import IllegalUpdateError, render_offerset

router = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["execution broker"])

_BODY = {"type": "object", "additionalProperties": True}
_REQUEST = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": _BODY}, "application/json": {"schema": _BODY}},
    }
}
_ANSWER: Responses = {
    200: {
        "description": "YAML (unless only JSON is accepted)",
        "content": {"application/yaml": {"schema": _BODY}, "application/json": {"schema": _BODY}},
    },
    400: problem("not JSON nor YAML"),
}
_LIST = {"type": "array", "items": _BODY}
_LIST_ANSWER: Responses = {
    200: {
        "description": "YAML (unless only JSON is accepted)",
        "content": {"application/yaml": {"schema": _LIST}, "application/json": {"schema": _LIST}},
    }
}


@router.post("/offersets", response_class=Response, responses=_ANSWER, openapi_extra=_REQUEST)
async def ask(request: Request, controller: Control, who: Anyone) -> Response:
    """Offers to run what the request asks (YES), or NO with the reasons; the offers hold what they offer
    until they expire."""
    document = _read(await request.body(), request.headers.get("content-type", ""))
    # Off the event loop: checking a component builds it (a user's config), under the broker's lock.
    offerset = await run_in_threadpool(controller.broker.ask, document, who.user)
    found, offers = controller.broker.offerset(offerset.uuid, who.user)
    body = render_offerset(found.uuid, found.name, found.created, offers, found.messages, _base(request))
    response = _answer(body, request)
    response.headers["Location"] = body["meta"]["url"]
    return response


@router.get(
    "/offersets/{uuid}",
    response_class=Response,
    responses={**_ANSWER, 404: problem("no such offer set of yours")},
)
def offerset(uuid: str, request: Request, controller: Control, who: Anyone) -> Response:
    try:
        found, offers = controller.broker.offerset(uuid, who.user)
    except NotFoundError as exc:
        refuse(404, str(exc))
    return _answer(
        render_offerset(found.uuid, found.name, found.created, offers, found.messages, _base(request)),
        request,
    )


@router.get("/sessions", response_class=Response, responses=_LIST_ANSWER)
def sessions(request: Request, controller: Control, who: Anyone) -> Response:
    """Your sessions, offered or accepted, with their phases."""
    return _answer([s.render(_base(request)) for s in controller.broker.mine(who.user)], request)


@router.get(
    "/sessions/{uuid}",
    response_class=Response,
    responses={**_ANSWER, 404: problem("no such session of yours")},
)
def session(uuid: str, request: Request, controller: Control, who: Anyone) -> Response:
    try:
        return _answer(controller.broker.session(uuid, who.user).render(_base(request)), request)
    except NotFoundError as exc:
        refuse(404, str(exc))


@router.post(
    "/sessions/{uuid}",
    response_class=Response,
    responses={
        **_ANSWER,
        404: problem("no such session of yours"),
        409: problem("an update not allowed now"),
    },
    openapi_extra=_REQUEST,
)
async def update(uuid: str, request: Request, controller: Control, who: Anyone) -> Response:
    """Accept, reject or cancel (the session's options say which, now)."""
    document = _read(await request.body(), request.headers.get("content-type", ""))
    try:
        changed = await run_in_threadpool(controller.broker.update, uuid, document, who.user)
    except NotFoundError as exc:
        refuse(404, str(exc))
    except IllegalUpdateError as exc:
        refuse(409, str(exc))
    return _answer(changed.render(_base(request)), request)


def _read(body: bytes, content_type: str) -> Any:
    """The request as data: JSON or YAML, by its declared type (JSON first when none is declared)."""
    if not body.strip():
        refuse(400, "a request body is required (JSON or YAML)")
    try:
        document = _parsed(body.decode(), content_type)
    except (UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError) as exc:
        refuse(400, f"the body is neither JSON nor YAML: {exc}")
    if not isinstance(document, dict):
        refuse(400, f"the body must be a mapping of fields, not {type(document).__name__}")
    if _depth(document) > MAX_DEPTH:
        refuse(400, f"the body nests deeper than {MAX_DEPTH} levels")
    return document


MAX_DEPTH = 32


def _depth(document: Any) -> int:
    """How deep mappings and lists nest in ``document`` (counted without recursion)."""
    deepest, todo = 0, [(document, 1)]
    while todo:
        value, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        todo.extend((child, depth + 1) for child in children)
    return deepest


class _PlainYaml(yaml.SafeLoader):
    """YAML without anchors and aliases: a request never needs them, and an alias bomb would expand
    without end in the controller."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not accepted")
        return super().compose_node(parent, index)


def _parsed(text: str, content_type: str) -> Any:
    if "json" in content_type:
        return json.loads(text)
    if "yaml" in content_type:
        return yaml.load(text, Loader=_PlainYaml)
    try:
        return json.loads(text)
    except ValueError:
        return yaml.load(text, Loader=_PlainYaml)


def _answer(body: Any, request: Request) -> Response:
    """YAML, unless the client accepts JSON and not YAML."""
    accept = request.headers.get("accept", "")
    if "json" in accept and "yaml" not in accept:
        return Response(json.dumps(body), media_type="application/json")
    return Response(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), media_type="application/yaml")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")
