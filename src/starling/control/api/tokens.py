"""Access tokens through the controller: who a token names, list, create (operator), revoke.

A user lists and revokes its own tokens; an operator everyone's, and creates them. A token is shown
once, when it is made; after that only its id names it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from starling.control.api.auth import ANYONE, Anyone, Operator, scraper
from starling.control.api.common import AUTH_RESPONSES, REFUSED, config_refused, problem, refuse
from starling.control.api.deps import Control
from starling.control.tokens import USER_NAME, Principal, Role, TokenRole

_DAY_S = 86_400.0


class TokenView(BaseModel):
    id: str
    role: Role
    user: str
    created: float
    expires: float | None = Field(description="when it stops working (null: never)")
    revoked: float | None = Field(description="when it was revoked (null: it was not)")


class NewToken(BaseModel):
    role: TokenRole = "user"
    user: str = Field(pattern=USER_NAME, description="the owner: a user's name (ignored for an operator)")
    expires_in_days: float | None = Field(90.0, gt=0, le=3650, strict=True, description="null: never")


class TokenMade(BaseModel):
    id: str
    token: str = Field(description="shown this once; only its SHA-256 is kept")


class Identity(BaseModel):
    role: Role
    user: str = Field(description="the owner of what the token makes (an operator's: operator)")


class TokenRevoked(BaseModel):
    id: str
    revoked: bool


router = APIRouter(responses=AUTH_RESPONSES, tags=["tokens"])


@router.get("/whoami")
def whoami(who: Annotated[Principal, Depends(scraper)]) -> Identity:
    """Who the token names: how the services beside the controller (``starling web``) learn whose
    request they serve, without a copy of the tokens."""
    return Identity(role=who.role, user=who.user)


@router.get("/tokens", dependencies=ANYONE)
def list_tokens(controller: Control, who: Anyone) -> list[TokenView]:
    """Your tokens (an operator's: everyone's), never the secrets."""
    user = None if who.role == "operator" else who.user
    return [TokenView.model_validate(t) for t in controller.state.tokens_store.list(user)]


@router.post("/tokens", status_code=201, responses=REFUSED, dependencies=ANYONE)
def create_token(body: NewToken, controller: Control, who: Operator) -> TokenMade:
    """Make a token (operators only)."""
    user = "operator" if body.role == "operator" else body.user
    expires = body.expires_in_days * _DAY_S if body.expires_in_days is not None else None
    with config_refused():
        token, token_id = controller.state.tokens_store.create(body.role, user, expires)
    return TokenMade(id=token_id, token=token)


@router.delete("/tokens/{token_id}", responses={404: problem("you have no such token")}, dependencies=ANYONE)
def revoke_token(token_id: str, controller: Control, who: Anyone) -> TokenRevoked:
    """Revoke a token at once: your own (an operator: anyone's)."""
    user = None if who.role == "operator" else who.user
    if not controller.state.tokens_store.revoke(token_id, user):
        refuse(404, f"you have no token {token_id!r} to revoke")
    return TokenRevoked(id=token_id, revoked=True)
