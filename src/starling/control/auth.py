"""Who may use a control API: bearer tokens, checked against their SHA-256 (the secret is never kept).

The controller checks the tokens of its store (operator and user roles, ``starling token create``).
A worker checks one shared operator secret, given by whoever starts it (``STARLING_CONTROL_TOKEN``
or a token file); the controller and ``LocalChain`` hand their workers one. Probes and the IVOA VOSI
documents (``/health``, ``/ready``, ``/availability``, ``/capabilities``) need no token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Protocol

from starling.control.tokens import Principal
from starling.core.secrets import write_private

TOKEN_ENV = "STARLING_CONTROL_TOKEN"


class TokenAuthority(Protocol):
    def principal(self, token: str) -> Principal | None: ...


class SharedSecret:
    """One operator secret; only its digest is held."""

    def __init__(self, secret: str) -> None:
        self._digest = hashlib.sha256(secret.encode()).digest()

    def principal(self, token: str) -> Principal | None:
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            return Principal(role="operator", user="operator")
        return None


def new_secret() -> str:
    return f"stl_{secrets.token_urlsafe(32)}"


def secret_from_environment_or_file(token_file: Path) -> tuple[str, bool]:
    """The secret from ``$STARLING_CONTROL_TOKEN``, else from ``token_file``, else a new one saved there
    (readable by the owner only). Returns the secret and whether it was made now."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], False
    if token_file.is_file():
        return token_file.read_text().strip(), False
    secret = new_secret()
    write_private(token_file, secret)
    return secret, True
