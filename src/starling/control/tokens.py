"""Access tokens: random strings shown once, kept as their SHA-256, with a role, an owner, an id to
name them by (list, revoke), and an expiry.

Roles: ``operator`` (may change anything), ``user`` (its own filters and lists, and a redacted view of
the pipeline), ``metrics`` (may read ``/metrics`` and ``/status`` only: what a Prometheus scrape
needs, and nothing it could leak), ``worker`` (the workers' shared secret, at the controller: may
read the stored bodies the pipeline refers to). A user's name is its owner id: ``operator`` is reserved, so no
user can own what an operator made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Literal

from starling.errors import ConfigError

# The roles a token can be made for; ``worker`` is the workers' own secret, never a stored token.
TokenRole = Literal["operator", "user", "metrics"]
Role = Literal[TokenRole, "worker"]
ROLES: tuple[TokenRole, ...] = ("operator", "user", "metrics")
USER_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
RESERVED_USERS = frozenset({"operator", "metrics", "admin", "root", "starling"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS access_tokens (
    token_sha256 TEXT PRIMARY KEY, role TEXT NOT NULL, user_name TEXT NOT NULL, created REAL NOT NULL
);
"""
# Added after the first release: a database made before gains them when opened.
_LATER_COLUMNS = {"token_id": "TEXT", "expires": "REAL", "revoked": "REAL"}


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    user: str
    token_id: str = ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_user_name(role: Role, user: str) -> None:
    if role == "operator":
        return
    if not re.fullmatch(USER_NAME, user):
        raise ConfigError(f"a user name is lower-case letters, digits, '_' or '-' (got {user!r})")
    if user in RESERVED_USERS:
        raise ConfigError(f"{user!r} is reserved; choose another user name")


class TokenStore:
    """The tokens of one controller, in its SQLite database."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db, self._lock = db, lock
        with self._lock:
            self._db.executescript(SCHEMA)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(access_tokens)")}
            for column, kind in _LATER_COLUMNS.items():
                if column not in present:
                    self._db.execute(f"ALTER TABLE access_tokens ADD COLUMN {column} {kind}")
            self._db.execute(
                "UPDATE access_tokens SET token_id = substr(token_sha256, 1, 12) WHERE token_id IS NULL"
            )

    def create(self, role: Role, user: str, expires_in_s: float | None = None) -> tuple[str, str]:
        """A new token and its id; the token is not kept (only its digest)."""
        if role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}")
        check_user_name(role, user)
        token = f"stl_{secrets.token_urlsafe(32)}"
        token_id = f"tok_{secrets.token_hex(6)}"
        now = time.time()
        expires = now + expires_in_s if expires_in_s is not None else None
        with self._lock:
            self._db.execute(
                "INSERT INTO access_tokens (token_sha256, role, user_name, created, token_id, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (digest(token), role, user, now, token_id, expires),
            )
        return token, token_id

    def principal(self, token: str) -> Principal | None:
        """Whom a token names, if it is known, not revoked and not expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT role, user_name, token_id FROM access_tokens WHERE token_sha256 = ? "
                "AND revoked IS NULL AND (expires IS NULL OR expires > ?)",
                (digest(token), time.time()),
            ).fetchone()
        return Principal(role=row[0], user=row[1], token_id=row[2]) if row else None

    def list(self, user: str | None = None) -> list[dict[str, object]]:
        """Every token (or one user's), without the secret: id, role, user, created, expires, revoked."""
        query = "SELECT token_id, role, user_name, created, expires, revoked FROM access_tokens"
        parameters: tuple[str, ...] = ()
        if user is not None:
            query, parameters = query + " WHERE user_name = ? AND role != 'operator'", (user,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created", parameters).fetchall()
        names = ("id", "role", "user", "created", "expires", "revoked")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def revoke(self, token_id: str, user: str | None = None) -> bool:
        """Revoke a token by its id (only ``user``'s when given); False if there is none to revoke."""
        query = "UPDATE access_tokens SET revoked = ? WHERE token_id = ? AND revoked IS NULL"
        parameters: tuple[object, ...] = (time.time(), token_id)
        if user is not None:
            query, parameters = query + " AND user_name = ? AND role != 'operator'", (*parameters, user)
        with self._lock:
            return self._db.execute(query, parameters).rowcount > 0
