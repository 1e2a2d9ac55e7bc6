"""Opening a store by where it is: the one place that maps a location to a backend."""

from __future__ import annotations

from pathlib import Path

from starling.errors import StoreError
from starling.store.base import AlertStore
from starling.store.sqlite import SQLiteStore


def open_store(location: str | Path, lock_timeout_s: float = 60.0) -> AlertStore:
    """A store from a location: a file path or ``sqlite:///path`` (PostgreSQL URLs to come).

    ``lock_timeout_s``: how long a write waits for another writer's lock before the store is taken
    to be down (an outage: the stage backs off and tries again)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        raise StoreError("the PostgreSQL store is not implemented yet; use a SQLite path")
    return SQLiteStore(Path(text.removeprefix("sqlite:///")), lock_timeout_s)
