"""What the controller keeps in the store: the desired pipeline (versioned) and the access tokens
(``starling.control.tokens``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.shape_policy import ShapePolicy
from starling.control.tokens import Principal, Role, TokenStore
from starling.core.bodies import digest_of
from starling.core.secrets import private_file
from starling.core.spec import PipelineSpec
from starling.core.stages import stage_names

_SCHEMA = """
CREATE TABLE IF NOT EXISTS controller_state (
    name TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stored_bodies (
    digest TEXT PRIMARY KEY, body BLOB NOT NULL, created REAL NOT NULL, unreferenced_since REAL
);
"""

# A body no config refers to any longer is kept this long after it stopped being referred to: a worker
# still applying the list before it, or started from a pipeline file (a Secret) not yet rewritten, may
# yet ask for it.
BODY_GRACE_S = 3600.0


class DesiredPipeline(BaseModel):
    """The pipeline the controller makes the running system match."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    spec: PipelineSpec
    # Per stage; a stage the dict does not name runs one replica, and a name no stage has is dropped.
    replicas: dict[str, int] = Field(default_factory=dict)
    autoscaling: dict[str, AutoscalePolicy] = Field(default_factory=dict)
    shape: ShapePolicy | None = None  # none: the chain's shape changes only when an operator changes it
    # Each stage the shape policy split out, with the stage it came from: what it may fuse back.
    split_from: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _replicas_per_stage(self) -> DesiredPipeline:
        names = stage_names(self.spec)
        replicas = {name: self.replicas.get(name, 1) for name in names}
        autoscaling = {name: p for name, p in self.autoscaling.items() if name in names}
        split_from = {
            out: origin for out, origin in self.split_from.items() if out in names and origin in names
        }
        object.__setattr__(self, "replicas", replicas)
        object.__setattr__(self, "autoscaling", autoscaling)
        object.__setattr__(self, "split_from", split_from)
        return self


class ControllerState:
    def __init__(self, path: Path) -> None:
        # It holds the desired pipeline with its users' secrets: its owner's only (SQLite gives its
        # journal files the database file's permissions).
        private_file(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.tokens_store = TokenStore(self._db, self._lock)

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

    def save_named(self, name: str, body: str) -> None:
        """Keep another part of the controller's state (the ExecutionBroker's sessions) under ``name``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO controller_state VALUES (?, 0, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "body = excluded.body, updated = excluded.updated",
                (name, body, time.time()),
            )

    def load_named(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM controller_state WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def put_body(self, data: bytes) -> str:
        """Keep a body (``starling.core.bodies``) under its digest, once; the digest."""
        digest = digest_of(data)
        with self._lock:
            self._db.execute(
                "INSERT INTO stored_bodies VALUES (?, ?, ?, NULL) "
                "ON CONFLICT (digest) DO UPDATE SET unreferenced_since = NULL",
                (digest, data, time.time()),
            )
        return digest

    def body(self, digest: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM stored_bodies WHERE digest = ?", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def forget_bodies(self, keep: set[str]) -> int:
        """Mark the bodies outside ``keep`` unreferenced from now (those in it referenced again), and
        remove those unreferenced for more than ``BODY_GRACE_S``; how many were removed."""
        now = time.time()
        with self._lock:
            rows = self._db.execute("SELECT digest, unreferenced_since FROM stored_bodies").fetchall()
            for digest, since in rows:
                if digest in keep and since is not None:
                    self._db.execute(
                        "UPDATE stored_bodies SET unreferenced_since = NULL WHERE digest = ?", (digest,)
                    )
                elif digest not in keep and since is None:
                    self._db.execute(
                        "UPDATE stored_bodies SET unreferenced_since = ? WHERE digest = ?", (now, digest)
                    )
            gone = [
                d for d, since in rows if d not in keep and since is not None and since < now - BODY_GRACE_S
            ]
            self._db.executemany("DELETE FROM stored_bodies WHERE digest = ?", [(d,) for d in gone])
        return len(gone)

    def create_token(self, role: Role, user: str, expires_in_s: float | None = None) -> str:
        return self.tokens_store.create(role, user, expires_in_s)[0]

    def principal(self, token: str) -> Principal | None:
        return self.tokens_store.principal(token)

    def tokens(self) -> list[dict[str, object]]:
        return self.tokens_store.list()

    def close(self) -> None:
        self._db.close()
