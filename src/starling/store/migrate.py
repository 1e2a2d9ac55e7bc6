"""Bringing a store's schema to the revision this code writes (Alembic), on SQLite and PostgreSQL.

Every revision only adds (tables, nullable columns, indexes built online), so writers of the previous
revision go on writing while a store is migrated. Opening a store for writing migrates it when it is
behind; replicas that start together take turns (a PostgreSQL advisory lock, SQLite's write lock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starling.errors import StoreError, StoreUnavailableError
from starling.store.location import is_postgres, shown_location, sqlalchemy_url

HEAD = "0009"  # the newest revision in starling/store/migrations/versions (a test keeps them equal)
_MIGRATION_LOCK = 0x5741524C  # the advisory lock migrations take on PostgreSQL ("STARL")


def upgrade(location: str | Path, revision: str = "head") -> None:
    """Migrate the store at ``location`` to ``revision`` (default: the newest)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    engine = create_engine(sqlalchemy_url(location))
    try:
        with _turn(location), engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                # A migration waits at most this for a table's lock, so writers never queue behind it long.
                connection.execute(text("SET lock_timeout = '10s'"))
                connection.commit()
            config = Config()
            config.set_main_option("script_location", "starling.store:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
    except OperationalError as exc:
        raise StoreUnavailableError(
            f"store {shown_location(location)} cannot be migrated now: {exc.orig}"
        ) from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"store {shown_location(location)} cannot be migrated: {exc}") from exc
    finally:
        engine.dispose()


@contextmanager
def _turn(location: str | Path, wait_s: float = 600.0) -> Iterator[None]:
    """On PostgreSQL, one migration at a time: a session advisory lock, asked for again and again
    rather than waited on, because a migration building an index CONCURRENTLY waits for every open
    snapshot, a blocked lock request's included (that would be a deadlock)."""
    if not is_postgres(location):
        yield
        return
    import psycopg

    try:
        with psycopg.connect(str(location), autocommit=True, connect_timeout=10) as conn:
            deadline = time.monotonic() + wait_s
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK,)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"another migration of {shown_location(location)} runs too long"
                    )
                time.sleep(0.2)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(f"store {shown_location(location)} cannot be reached: {exc}") from exc
