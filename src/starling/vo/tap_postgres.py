"""Reading a PostgreSQL store for TAP: connections of TAP's own (a pool apart from the writers', so
queries never take their connections), each query in a read-only transaction as the reader role
(``starling.store.access``: row-level security shows it only the filter matches its viewer may read),
with a ``statement_timeout``, cancelled on the server when its job is aborted, and its rows fetched in
chunks from a server-side cursor as the response is written. ``TAP_SCHEMA`` is a schema of the database,
filled afresh when the service starts; so is ``starling_tap`` (``starling.alert_fields`` and the functions
translated ADQL calls), when what it holds is not what this service makes.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from typing import Any

from starling.errors import StoreUnavailableError
from starling.store.access import READER_ROLE, VIEWER_SETTING
from starling.vo.alert_fields import SCHEMA, install_postgres
from starling.vo.tap_model import TapTable
from starling.vo.tap_run import QueryRun, TapQueryError, create_upload, tap_schema_ddl

CHUNK_ROWS = 1000
_TAP_SCHEMA_LOCK = 0x54415053  # "TAPS": one service fills TAP_SCHEMA at a time


def _reading_pool(url: str, size: int) -> Any:
    from psycopg_pool import ConnectionPool

    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        # No JIT: q3c's cost estimates would make the planner compile short queries for longer than they run.
        kwargs={
            "options": "-c default_transaction_read_only=on -c jit=off",
            "application_name": "starling-tap",
        },
        open=True,
    )


def _cancel_when(cancel: threading.Event, done: threading.Event, conn: Any) -> None:
    while not done.wait(0.2):
        if cancel.is_set():
            conn.cancel_safe()
            return


class PostgresReader:
    """TAP's reading of the PostgreSQL store at ``url``."""

    def __init__(self, url: str, shown: str, pool_size: int = 4) -> None:
        self.url = url
        self.shown = shown
        self.pool_size = pool_size
        self._pool = _reading_pool(url, pool_size)
        self._views_ready = False

    def install_views(self) -> bool:
        """The schema of starling.alert_fields and the translated ADQL's functions (see
        :func:`starling.vo.alert_fields.install_postgres`); False while the store lacks its tables."""
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as conn, conn.transaction():
            self._views_ready = install_postgres(conn)
        return self._views_ready

    def close(self) -> None:
        self._pool.close()

    def stream(self, sql: str, run: QueryRun) -> Generator[Any, None, None]:
        """Yields the result's column names, then its rows in lists of up to CHUNK_ROWS."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            if not self._views_ready and f"{SCHEMA}." in sql.lower():  # no store tables at the start
                self.install_views()
            with self._pool.connection(timeout=10) as conn, conn.transaction():
                self._begin(conn, run)
                # An abort cancels the statement on the server, from a thread that waits for it.
                done = threading.Event()
                watcher = threading.Thread(target=_cancel_when, args=(run.cancel, done, conn), daemon=True)
                watcher.start()
                try:
                    with conn.cursor(name="tap_result") as cursor:
                        cursor.execute(sql)
                        first = cursor.fetchmany(CHUNK_ROWS)
                        yield [d.name for d in cursor.description or ()]
                        while first:
                            yield [tuple(row) for row in first]
                            first = cursor.fetchmany(CHUNK_ROWS)
                finally:
                    done.set()
        except psycopg.errors.QueryCanceled:
            raise run.stopped() from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailableError(f"store {self.shown} cannot be read: {exc}") from exc
        except psycopg.Error as exc:
            raise TapQueryError(f"the query failed in the database: {exc}".strip()) from None

    @staticmethod
    def _begin(conn: Any, run: QueryRun) -> None:
        """The transaction as the query's reader: its role, its viewer, its uploads, its time limit."""
        if run.uploads:  # written into temporary tables, then the transaction reads only
            conn.execute("SET TRANSACTION READ WRITE")  # before any other statement of the transaction
        conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
        conn.execute("SELECT set_config(%s, %s, true)", (VIEWER_SETTING, run.viewer or ""))
        if run.uploads:
            for upload in run.uploads:
                create_upload(conn.cursor(), upload, "postgres")
            conn.execute("SET LOCAL transaction_read_only = on")
        conn.execute(f"SET LOCAL statement_timeout = {int(run.timeout_s * 1000)}")

    def install_tap_schema(self, tables: Sequence[TapTable], rows: dict[str, list[Any]]) -> None:
        """TAP_SCHEMA as a schema of the database, filled afresh in one transaction, readable by the
        reader role."""
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TAP_SCHEMA_LOCK,))
            conn.execute("DROP SCHEMA IF EXISTS tap_schema CASCADE")
            conn.execute("CREATE SCHEMA tap_schema")
            for table in tables:
                create, insert = tap_schema_ddl(table, "%s")
                conn.execute(create)
                with conn.cursor() as cursor:
                    cursor.executemany(insert, rows.get(table.qualified_name, []))
            conn.execute(f"GRANT USAGE ON SCHEMA tap_schema TO {READER_ROLE}")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA tap_schema TO {READER_ROLE}")
