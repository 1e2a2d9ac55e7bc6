"""Where a store is: a SQLite path (or ``sqlite:///path``) or a PostgreSQL URL, and how it may be shown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starling.core.spec import PipelineSpec


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def store_is_shared(spec: PipelineSpec) -> bool:
    """Whether every ``store`` sink of the pipeline writes PostgreSQL, which any number of writers (the
    distribute stage's replicas) and readers (the controller) share; False without a store sink, and
    for SQLite (the default), a file on one volume with one writer."""
    paths = [str(sink.config.get("path", "")) for sink in spec.sinks if sink.use == "store"]
    return bool(paths) and all(is_postgres(path) for path in paths)


def sqlalchemy_url(location: str | Path) -> str:
    """The SQLAlchemy URL of a store location (for Alembic)."""
    text = str(location)
    if is_postgres(text):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return "sqlite:///" + sqlite_path(text).as_posix()


def sqlite_path(location: str | Path) -> Path:
    return Path(str(location).removeprefix("sqlite:///"))


def shown_location(location: str | Path) -> str:
    """A location as it may be logged or shown: a PostgreSQL URL without its password."""
    text = str(location)
    if is_postgres(text) and "@" in text:
        scheme, rest = text.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return text
