"""The one authorization dependency of every control API: a bearer token, checked by the app's authority.

The app holds its ``TokenAuthority`` in ``app.state.authority`` (the controller's token store, or a
worker's shared secret), so the same dependency serves both APIs. No token or an unknown one: 401;
a valid token without the role a route needs: 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from starling.control.auth import TokenAuthority
from starling.control.state import Principal


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Whoever the bearer token names."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "a token is required: 'Authorization: Bearer <token>'")
    authority: TokenAuthority = request.app.state.authority
    found = authority.principal(authorization.removeprefix("Bearer ").strip())
    if found is None:
        raise HTTPException(401, "unknown token")
    return found


def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Whoever the token names, if it is an operator."""
    if who.role != "operator":
        raise HTTPException(403, "this needs an operator token")
    return who


Anyone = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(operator)]
# For routers and routes that need the check but not the principal.
ANYONE: list[Any] = [Depends(principal)]
OPERATOR: list[Any] = [Depends(operator)]
