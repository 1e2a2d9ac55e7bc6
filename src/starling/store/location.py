"""Where a store is: a SQLite path (or ``sqlite:///path``) or a PostgreSQL URL, and how it may be shown."""

from __future__ import annotations

from pathlib import Path


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


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
