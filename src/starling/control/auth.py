"""Who may use a control API: bearer tokens, checked against their SHA-256 (the secret is never kept).

The controller checks the tokens of its store (operator and user roles, ``starling token create``).
A worker checks one shared operator secret, given by whoever starts it (``STARLING_CONTROL_TOKEN``
or a token file); the controller and ``LocalChain`` hand their workers one. Workers and the controller
also take a read-only metrics token when ``STARLING_METRICS_TOKEN`` is set (Prometheus's: ``/metrics``,
and the controller's ``/status``), so a scrape never holds a token that could change the pipeline.
Probes and the IVOA VOSI documents (``/health``, ``/ready``, ``/availability``, ``/capabilities``)
need no token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Protocol

from starling.control.tokens import Principal, Role
from starling.core.secrets import write_private

TOKEN_ENV = "STARLING_CONTROL_TOKEN"
METRICS_TOKEN_ENV = "STARLING_METRICS_TOKEN"


class TokenAuthority(Protocol):
    def principal(self, token: str) -> Principal | None: ...


class SharedSecret:
    """One secret of one role (an operator's by default); only its digest is held."""

    def __init__(self, secret: str, role: Role = "operator") -> None:
        self._digest = hashlib.sha256(secret.encode()).digest()
        self.role: Role = role

    def principal(self, token: str) -> Principal | None:
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            return Principal(role=self.role, user=self.role)
        return None


class AnyOf:
    """The first authority that knows the token."""

    def __init__(self, *authorities: TokenAuthority) -> None:
        self.authorities = authorities

    def principal(self, token: str) -> Principal | None:
        for authority in self.authorities:
            if (found := authority.principal(token)) is not None:
                return found
        return None


def with_metrics_token(authority: TokenAuthority) -> TokenAuthority:
    """``authority``, taking also the read-only metrics token of ``$STARLING_METRICS_TOKEN`` when set."""
    metrics = os.environ.get(METRICS_TOKEN_ENV, "").strip()
    return AnyOf(authority, SharedSecret(metrics, role="metrics")) if metrics else authority


def worker_authority(secret: str) -> TokenAuthority:
    """A worker's: its operator secret, and the metrics token when one is set."""
    return with_metrics_token(SharedSecret(secret))


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
