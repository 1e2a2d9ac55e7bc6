"""Who a request of the web service comes from: its bearer token, checked by the controller that made
it (``GET /whoami``), so the service holds no copy of the tokens. An answer is remembered for a short
while (a revoked token stops working within ``ttl_s``), by the token's SHA-256, never the token.

Without a token a request is anonymous: it reads the public tables. A service started without a
controller checks no token, so any token is refused rather than silently ignored.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field

from starling.control.client import ControllerClient
from starling.control.tokens import Principal
from starling.errors import ControllerRefusedError, ControllerUnreachableError


class Identities:
    """Tokens checked by the controller at ``controller_url`` (None: no tokens are accepted)."""

    def __init__(self, controller_url: str | None, ttl_s: float = 30.0, remembered: int = 10_000) -> None:
        self.controller_url = controller_url
        self.ttl_s = ttl_s
        self.remembered = remembered
        self._answers: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def principal(self, token: str) -> Principal | None:
        """Whom ``token`` names, None for a token the controller does not know. Raises
        ControllerUnreachableError when the controller cannot be asked."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            found = self._answers.get(key)
            if found is not None and now - found[0] < self.ttl_s:
                return found[1]
        answer = self._ask(token)
        with self._lock:
            self._answers[key] = (now, answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.remembered:
                self._answers.popitem(last=False)
        return answer

    def _ask(self, token: str) -> Principal | None:
        if self.controller_url is None:
            return None
        try:
            answer = ControllerClient(self.controller_url, token, timeout_s=10.0).whoami()
        except ControllerRefusedError as exc:
            if exc.status in (401, 403):
                return None
            raise ControllerUnreachableError(f"the controller could not check the token: {exc}") from exc
        return Principal(role=answer["role"], user=answer["user"])


def viewer(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal | None:
    """The request's principal: None without a token; 401 for a token nobody knows; 503 when the
    controller cannot be asked."""
    if not authorization:
        return None
    if not authorization.startswith("Bearer "):
        raise HTTPException(401, "a token is sent as 'Authorization: Bearer <token>'")
    identities: Identities = request.app.state.identities
    if identities.controller_url is None:
        raise HTTPException(401, "this service checks no tokens (started without --controller): send none")
    try:
        found = identities.principal(authorization.removeprefix("Bearer ").strip())
    except ControllerUnreachableError as exc:
        raise HTTPException(503, f"your token cannot be checked now; try again ({exc})") from None
    if found is None:
        raise HTTPException(401, "unknown token")
    return found


class Viewer(BaseModel):
    signed_in: bool
    role: str | None = Field(description="operator or user; null without a token")
    user: str | None = Field(description="the user's name; null without a token")


router = APIRouter(prefix="/api", tags=["session"])


@router.get(
    "/whoami",
    responses={
        401: {"description": "an unknown token"},
        503: {"description": "the token cannot be checked now (the controller does not answer)"},
    },
)
def whoami(who: Annotated[Principal | None, Depends(viewer)]) -> Viewer:
    """Whom the service takes the request to come from: how the portal's pages show who is signed in."""
    if who is None:
        return Viewer(signed_in=False, role=None, user=None)
    return Viewer(signed_in=True, role=who.role, user=who.user)
