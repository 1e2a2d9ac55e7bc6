"""Opening a store by where it is: the one place that maps a location to a backend."""

from __future__ import annotations

from pathlib import Path

from starling.store.base import AlertStore
from starling.store.location import is_postgres, sqlite_path


def open_store(location: str | Path, lock_timeout_s: float = 60.0, cutouts: Path | None = None) -> AlertStore:
    """A store from a location: a file path, ``sqlite:///path`` or ``postgresql://user@host/db``.

    ``lock_timeout_s``: how long a write waits for another writer's lock before the store is taken
    to be down (an outage: the stage backs off and tries again). ``cutouts``: the directory that keeps
    the cutout files (none kept when None). A store behind the schema this code writes is migrated."""
    if is_postgres(location):
        from starling.store.postgres import PostgresStore  # psycopg is loaded only when it is used

        return PostgresStore(str(location), lock_timeout_s, cutouts)
    from starling.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(location), lock_timeout_s, cutouts)
