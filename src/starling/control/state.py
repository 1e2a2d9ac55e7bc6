"""What the controller keeps in the store: the desired pipeline (versioned) and the access tokens.

Tokens are random strings shown once; only their SHA-256 is stored. A token has a role: ``operator``
(may change anything) or ``user`` (may read the pipeline and manage that user's own filters).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from starling.control.autoscale_policy import AutoscalePolicy
from starling.core.spec import PipelineSpec
from starling.core.stages import STAGES, StageName

Role = Literal["operator", "user"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS controller_state (
    name TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_sha256 TEXT PRIMARY KEY, role TEXT NOT NULL, user_name TEXT NOT NULL, created REAL NOT NULL
);
"""


class DesiredPipeline(BaseModel):
    """The pipeline the controller makes the running system match."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    spec: PipelineSpec
    replicas: dict[StageName, int] = Field(default_factory=lambda: dict.fromkeys(STAGES, 1))
    autoscaling: dict[StageName, AutoscalePolicy] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    user: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ControllerState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def load(self) -> DesiredPipeline | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM controller_state WHERE name = 'pipeline'").fetchone()
        return DesiredPipeline.model_validate_json(row[0]) if row else None

    def save(self, desired: DesiredPipeline) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO controller_state VALUES ('pipeline', ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "version = excluded.version, body = excluded.body, updated = excluded.updated",
                (desired.version, desired.model_dump_json(), time.time()),
            )

    def create_token(self, role: Role, user: str) -> str:
        token = f"stl_{secrets.token_urlsafe(32)}"
        with self._lock:
            self._db.execute(
                "INSERT INTO access_tokens VALUES (?, ?, ?, ?)", (_digest(token), role, user, time.time())
            )
        return token

    def principal(self, token: str) -> Principal | None:
        with self._lock:
            row = self._db.execute(
                "SELECT role, user_name FROM access_tokens WHERE token_sha256 = ?", (_digest(token),)
            ).fetchone()
        return Principal(role=row[0], user=row[1]) if row else None

    def tokens(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT role, user_name, created FROM access_tokens ORDER BY created"
            ).fetchall()
        return [{"role": r, "user": u, "created": c} for r, u, c in rows]

    def close(self) -> None:
        self._db.close()
