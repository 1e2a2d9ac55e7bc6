"""The one authorization policy of every control API: a bearer token, checked by the app's authority.

The app holds its ``TokenAuthority`` in ``app.state.authority`` (the controller's token store, or a
worker's shared secret), so the same dependencies serve both APIs. No token, an unknown, revoked or
expired one: 401; a valid token without the role a route needs: 403. Three levels:

- ``SCRAPER``: any valid token, a ``metrics`` token included (``/metrics``, ``/status``);
- ``ANYONE``: an operator or a user (what a user may do to its own objects; routes scope to the owner);
- ``OPERATOR``: an operator.

The workers' own secret, at the controller (role ``worker``), passes none of them: it may only read the
stored bodies the pipeline refers to (``BODY_READER``, an operator too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from starling.control.auth import TokenAuthority
from starling.control.tokens import Principal


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Whoever the bearer token names."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "a token is required: 'Authorization: Bearer <token>'")
    authority: TokenAuthority = request.app.state.authority
    found = authority.principal(authorization.removeprefix("Bearer ").strip())
    if found is None:
        raise HTTPException(401, "unknown token")
    return found


def scraper(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Whoever the token names, unless it is the workers' secret."""
    if who.role == "worker":
        raise HTTPException(403, "a worker's token may only read stored bodies")
    return who


def body_reader(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """An operator, or a worker fetching a body its pipeline refers to."""
    if who.role not in ("operator", "worker"):
        raise HTTPException(403, "only the workers and an operator read stored bodies")
    return who


def member(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Whoever the token names, if it is an operator's or a user's (not a metrics token)."""
    if who.role not in ("operator", "user"):
        raise HTTPException(403, "this token may only read /metrics and /status")
    return who


def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Whoever the token names, if it is an operator."""
    if who.role != "operator":
        raise HTTPException(403, "this needs an operator token")
    return who


Anyone = Annotated[Principal, Depends(member)]
Operator = Annotated[Principal, Depends(operator)]
# For routers and routes that need the check but not the principal.
SCRAPER: list[Any] = [Depends(scraper)]
BODY_READER: list[Any] = [Depends(body_reader)]
ANYONE: list[Any] = [Depends(member)]
OPERATOR: list[Any] = [Depends(operator)]
