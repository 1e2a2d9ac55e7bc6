"""Running ADQL on a store for TAP: read-only connections of their own, a time limit, TAP_SCHEMA, and
the metadata of each result column.

The query is checked and translated once (``starling.adql.query``) and runs in the store's database:
SQLite opened read-only (``mode=ro``: a TAP query can never write, and never takes the writer's lock),
with the geometry functions registered and ``TAP_SCHEMA`` attached in memory; PostgreSQL in read-only
transactions with a ``statement_timeout``, ``TAP_SCHEMA`` a schema of its own that the service fills
when it starts. Rows are read up to MAXREC and one more, which tells an overflow.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from starling.adql import sqlite_functions
from starling.adql.parse import FilterSyntaxError
from starling.adql.query import Backend, CheckedQuery, ServedTable, check_query, parse_query
from starling.adql.sql_backend import to_sql
from starling.errors import StarlingError, StoreError, StoreUnavailableError
from starling.store.location import is_postgres, shown_location, sqlite_path
from starling.vo.tap_schema import TAP_TABLES, TapColumn, TapTable, tap_schema_rows
from starling.vo.tap_upload import Upload
from starling.vo.votable import infer_column


class TapQueryError(StarlingError):
    """A query refused or failed: the message is for the user (QUERY_STATUS=ERROR)."""


@dataclass(frozen=True)
class TapResult:
    columns: list[TapColumn]
    rows: list[tuple[Any, ...]]
    overflow: bool
    sql: str  # what ran in the database


_SQL_TYPES = {
    "double": "double precision",
    "float": "double precision",
    "long": "bigint",
    "int": "integer",
    "short": "integer",
    "boolean": "boolean",
    "char": "text",
    "unicodeChar": "text",
}


def served_tables() -> dict[str, ServedTable]:
    """Every table TAP serves, by its ADQL name in lower case, and the store's tables by bare name too."""
    served: dict[str, ServedTable] = {}
    for table in TAP_TABLES:
        adql = f"{table.schema}.{table.name}"
        columns = tuple(c.name.lower() for c in table.columns)
        backend_name = table.name if table.schema.lower() == "starling" else f"tap_schema.{table.name}"
        entry = ServedTable(adql, columns, backend_name, backend_name)
        served[adql.lower()] = entry
        if table.schema.lower() == "starling":
            served[table.name.lower()] = entry
    return served


def _tap_schema_ddl(table: TapTable, placeholder: str) -> tuple[str, str]:
    columns = ", ".join(f'"{c.name}" {_SQL_TYPES.get(c.datatype, "text")}' for c in table.columns)
    marks = ", ".join([placeholder] * len(table.columns))
    return (
        f'CREATE TABLE tap_schema."{table.name}" ({columns})',
        f'INSERT INTO tap_schema."{table.name}" VALUES ({marks})',
    )


def _tap_schema_tables() -> list[TapTable]:
    return [t for t in TAP_TABLES if t.schema.upper() == "TAP_SCHEMA"]


@dataclass
class _Run:
    """One query's limits: its time, and a flag that stops it."""

    timeout_s: float
    cancel: threading.Event
    uploads: tuple[Upload, ...] = ()
    started: float = dataclasses.field(default_factory=time.monotonic)

    def over(self) -> bool:
        return self.cancel.is_set() or time.monotonic() - self.started > self.timeout_s

    def stopped(self) -> TapQueryError:
        if self.cancel.is_set():
            return TapQueryError("the query was aborted")
        return TapQueryError(f"the query ran longer than {self.timeout_s:g} s and was stopped")


def _create_upload(cursor: Any, upload: Upload, schema: str, backend: str, placeholder: str) -> None:
    """An uploaded table for one query: in SQLite's attached memory database, or PostgreSQL's temporary
    tables (dropped when the transaction ends)."""
    name = f"{schema}.{'tap_upload_' if backend == 'postgres' else ''}{upload.name}"
    columns = ", ".join(f'"{column}" {upload.sql_type(kind, backend)}' for column, kind in upload.columns)
    drop = " ON COMMIT DROP" if backend == "postgres" else ""
    cursor.execute(
        f"CREATE TEMPORARY TABLE {name.split('.', 1)[1]} ({columns}){drop}"
        if backend == "postgres"
        else f"CREATE TABLE {name} ({columns})"
    )
    marks = ", ".join([placeholder] * len(upload.columns))
    cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", upload.rows)
    if backend == "postgres":  # the planner then knows its size: a join by q3c's index, not a scan
        cursor.execute(f"ANALYZE {name.split('.', 1)[1]}")


def _reading_pool(url: str) -> Any:
    """Read-only connections of TAP's own, so that queries never take the writers' connections."""
    from psycopg_pool import ConnectionPool

    return ConnectionPool(
        url,
        min_size=1,
        max_size=4,
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


class TapStore:
    """A store as TAP reads it."""

    def __init__(self, location: str | Path, timeout_s: float = 30.0) -> None:
        self.location = location
        self.shown = shown_location(location)
        self.timeout_s = timeout_s
        self.backend: Backend = "postgres" if is_postgres(location) else "sqlite"
        self.served = served_tables()
        self._columns = {
            f"{t.schema}.{t.name}".lower(): {c.name.lower(): c for c in t.columns} for t in TAP_TABLES
        }
        self._pool: Any = None
        self._tap_schema: sqlite3.Connection | None = None
        if self.backend == "postgres":
            self._install_postgres_tap_schema()
            self._pool = _reading_pool(str(location))
        else:
            self._tap_schema = self._sqlite_tap_schema()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._tap_schema is not None:
            self._tap_schema.close()

    # -- running a query ---------------------------------------------------------------------------

    def check(self, text: str, uploads: Sequence[Upload] = ()) -> CheckedQuery:
        """The query checked (TapQueryError with the position of a fault), without running it."""
        served = dict(self.served)
        for upload in uploads:
            columns = tuple(name for name, _ in upload.columns)
            served[f"tap_upload.{upload.name}"] = ServedTable(
                f"TAP_UPLOAD.{upload.name}",
                columns,
                f"tap_upload.{upload.name}",
                f"pg_temp.tap_upload_{upload.name}",
            )
        try:
            return check_query(parse_query(text), text, served)
        except FilterSyntaxError as exc:
            raise TapQueryError(str(exc)) from None

    def run(
        self,
        text: str,
        maxrec: int,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
        uploads: Sequence[Upload] = (),
    ) -> TapResult:
        """Run a query: at most ``maxrec`` rows, for at most ``timeout_s`` (the service's sync limit when
        None), stopped as soon as ``cancel`` is set (an async job aborted); ``uploads`` are its
        TAP_UPLOAD tables."""
        checked = self.check(text, uploads)
        sql = to_sql(checked, self.backend)
        run = _Run(timeout_s or self.timeout_s, cancel or threading.Event(), tuple(uploads))
        if self.backend == "postgres":
            names, rows = self._run_postgres(sql, maxrec + 1, run)
        else:
            names, rows = self._run_sqlite(sql, maxrec + 1, run)
        overflow = len(rows) > maxrec
        rows = rows[:maxrec]
        known = dict(self._columns)
        for upload in uploads:  # an uploaded column comes back as it was sent (its xtype kept)
            known[f"tap_upload.{upload.name}"] = {
                column: TapColumn(column, kind, "", arraysize="*" if kind == "char" else None, xtype=xtype)
                for (column, kind), xtype in zip(
                    upload.columns, upload.xtypes or [None] * len(upload.columns), strict=True
                )
            }
        return TapResult(self._result_columns(checked, names, rows, known), rows, overflow, sql)

    def _result_columns(
        self,
        checked: CheckedQuery,
        names: Sequence[str],
        rows: list[tuple[Any, ...]],
        known_columns: dict[str, dict[str, TapColumn]],
    ) -> list[TapColumn]:
        """Each output column's metadata: the table column's when it is one, else inferred from values."""
        tree = checked.tree
        while isinstance(tree, exp.SetOperation):
            tree = tree.this
        aliases: dict[str, str] = {}
        if isinstance(tree, exp.Select):
            for table in tree.find_all(exp.Table):
                aliases[(table.alias or table.name).lower()] = f"{table.db}.{table.name}".lower()
        projections = tree.selects if isinstance(tree, exp.Select) else []
        columns: list[TapColumn] = []
        for index, name in enumerate(names):
            known: TapColumn | None = None
            if index < len(projections):
                inner = projections[index].unalias()
                if isinstance(inner, exp.Column):
                    owner = aliases.get(inner.table.lower(), "")
                    known = known_columns.get(owner, {}).get(inner.name.lower())
            if known is not None:
                columns.append(dataclasses.replace(known, name=name) if known.name != name else known)
            else:
                columns.append(infer_column(name, [row[index] for row in rows]))
        return columns

    def _run_sqlite(self, sql: str, limit: int, run: _Run) -> tuple[list[str], list[tuple[Any, ...]]]:
        path = sqlite_path(self.location)
        if not path.exists():
            raise StoreError(f"no store at {path} (nothing stored yet?)")
        try:
            with self._sqlite(path, run) as db:
                cursor = db.execute(sql)
                names = [d[0] for d in cursor.description or ()]
                return names, [tuple(row) for row in cursor.fetchmany(limit)]
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise run.stopped() from None
            if "locked" in str(exc) or "unable to open" in str(exc):
                raise StoreUnavailableError(f"store {self.shown} cannot be read: {exc}") from exc
            raise TapQueryError(f"the query failed in the database: {exc}") from None
        except sqlite3.Error as exc:
            raise TapQueryError(f"the query failed in the database: {exc}") from None

    def _sqlite_tap_schema(self) -> sqlite3.Connection:
        """TAP_SCHEMA in a memory database every reading connection attaches; this connection keeps it
        alive for as long as the service runs (made once, not once per query)."""
        holder = sqlite3.connect(self._tap_schema_uri, uri=True, check_same_thread=False)
        rows = tap_schema_rows()
        for table in _tap_schema_tables():
            create, insert = _tap_schema_ddl(table, "?")
            holder.execute(create.replace("tap_schema.", "main.", 1))
            holder.executemany(insert.replace("tap_schema.", "main.", 1), rows.get(table.qualified_name, []))
        holder.commit()
        return holder

    @property
    def _tap_schema_uri(self) -> str:
        return f"file:starling_tap_schema_{id(self)}?mode=memory&cache=shared"

    @contextmanager
    def _sqlite(self, path: Path, run: _Run) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            sqlite_functions.register(db)
            db.execute("ATTACH DATABASE ? AS tap_schema", (self._tap_schema_uri,))
            if run.uploads:
                db.execute("ATTACH DATABASE ':memory:' AS tap_upload")
                for upload in run.uploads:
                    _create_upload(db.cursor(), upload, "tap_upload", "sqlite", "?")
            # Asked every 10,000 steps of SQLite's machine: past the deadline, or cancelled, it stops.
            db.set_progress_handler(lambda: int(run.over()), 10_000)
            yield db
        finally:
            db.close()

    def _run_postgres(self, sql: str, limit: int, run: _Run) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection(timeout=10) as conn, conn.transaction():
                if run.uploads:  # written into temporary tables, then the transaction reads only
                    conn.execute("SET TRANSACTION READ WRITE")
                    for upload in run.uploads:
                        _create_upload(conn.cursor(), upload, "pg_temp", "postgres", "%s")
                    conn.execute("SET LOCAL transaction_read_only = on")
                conn.execute(f"SET LOCAL statement_timeout = {int(run.timeout_s * 1000)}")
                # An abort cancels the statement on the server, from a thread that waits for it.
                done = threading.Event()
                watcher = threading.Thread(target=_cancel_when, args=(run.cancel, done, conn), daemon=True)
                watcher.start()
                try:
                    cursor = conn.execute(sql)
                    names = [d.name for d in cursor.description or ()]
                    return names, [tuple(row) for row in cursor.fetchmany(limit)]
                finally:
                    done.set()
        except psycopg.errors.QueryCanceled:
            raise run.stopped() from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailableError(f"store {self.shown} cannot be read: {exc}") from exc
        except psycopg.Error as exc:
            raise TapQueryError(f"the query failed in the database: {exc}".strip()) from None

    def _install_postgres_tap_schema(self) -> None:
        """TAP_SCHEMA as a schema of the database, filled afresh in one transaction as the service starts."""
        import psycopg

        rows = tap_schema_rows()
        with psycopg.connect(str(self.location), connect_timeout=10) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x54415053,))  # "TAPS": one service at a time
            conn.execute("DROP SCHEMA IF EXISTS tap_schema CASCADE")
            conn.execute("CREATE SCHEMA tap_schema")
            for table in _tap_schema_tables():
                create, insert = _tap_schema_ddl(table, "%s")
                conn.execute(create)
                with conn.cursor() as cursor:
                    cursor.executemany(insert, rows.get(table.qualified_name, []))
