"""Reading a SQLite store for TAP: connections read-only (``mode=ro``: a TAP query never writes and
never takes the writer's lock), with the geometry functions registered, ``TAP_SCHEMA`` attached from a
memory database made once, the query's uploads in a memory database of their own, and the reader shown
only the filter matches it may read (``starling.store.access``).

Connections are kept for the next query (setting one up costs about as much as a small query): each
query gets one to itself, names its reader, and gives it back when its rows are read.

A query's rows are read in chunks as the response is written, the connection held until the last one
(or until the result is closed): a result of a million rows is never all in memory.
"""

from __future__ import annotations

import queue
import sqlite3
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from starling.adql import sqlite_functions
from starling.errors import StoreError, StoreUnavailableError
from starling.store.access import guard_sqlite, show_matches_to
from starling.vo.alert_fields import create_sqlite_view
from starling.vo.tap_model import TapTable
from starling.vo.tap_run import QueryRun, TapQueryError, create_upload, tap_schema_ddl

CHUNK_ROWS = 1000
KEPT_CONNECTIONS = 8  # idle connections kept; more are opened when more queries run at once


class SqliteReader:
    """TAP's reading of the SQLite store at ``path``."""

    def __init__(
        self, path: Path, shown: str, tap_schema: Sequence[TapTable], rows: dict[str, list[Any]]
    ) -> None:
        self.path = path
        self.shown = shown
        self._uri = f"file:starling_tap_schema_{id(self)}?mode=memory&cache=shared"
        # This connection keeps the shared memory database alive for as long as the service runs.
        self._holder = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
        for table in tap_schema:
            create, insert = tap_schema_ddl(table, "?")
            self._holder.execute(create.replace("tap_schema.", "main.", 1))
            self._holder.executemany(
                insert.replace("tap_schema.", "main.", 1), rows.get(table.qualified_name, [])
            )
        self._holder.commit()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()
        self._holder.close()

    def stream(self, sql: str, run: QueryRun) -> Generator[Any, None, None]:
        """Yields the result's column names, then its rows in lists of up to CHUNK_ROWS."""
        if not self.path.exists():
            raise StoreError(f"no store at {self.path} (nothing stored yet?)")
        db = self._take(run)
        healthy = False
        cursor = db.cursor()
        try:
            self._guarded(lambda: cursor.execute(sql), run)
            yield [d[0] for d in cursor.description or ()]
            while chunk := self._guarded(lambda: cursor.fetchmany(CHUNK_ROWS), run):
                yield [tuple(row) for row in chunk]
            healthy = True
        except (TapQueryError, GeneratorExit):
            healthy = True  # the query's fault, or a reader that stopped early: not the connection's
            raise
        finally:
            cursor.close()  # a statement left open would hold its read snapshot (and the WAL) for ever
            self._give_back(db, run, healthy)

    def _take(self, run: QueryRun) -> sqlite3.Connection:
        """A set-up connection for ``run``: a kept one, else a new one."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            show_matches_to(db, run.viewer)
            if run.uploads:
                db.execute("ATTACH DATABASE ':memory:' AS tap_upload")
                for upload in run.uploads:
                    create_upload(db.cursor(), upload, "sqlite")
            # Asked every 10,000 steps of SQLite's machine: past the deadline, or cancelled, it stops.
            db.set_progress_handler(lambda: int(run.over()), 10_000)
        except sqlite3.Error as exc:
            db.close()
            raise self._failure(exc, run) from None
        return db

    def _give_back(self, db: sqlite3.Connection, run: QueryRun, healthy: bool) -> None:
        try:
            db.set_progress_handler(None, 0)
            if run.uploads:
                db.execute("DETACH DATABASE tap_upload")
            show_matches_to(db, None)  # an idle connection shows no user's matches
        except sqlite3.Error:
            healthy = False
        if healthy and self._idle.qsize() < KEPT_CONNECTIONS:
            self._idle.put(db)
        else:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        # Chunks are read from the response's worker threads, one at a time: never two threads at once.
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
        try:
            sqlite_functions.register(db)
            db.execute("ATTACH DATABASE ? AS tap_schema", (self._uri,))
            create_sqlite_view(db)  # starling.alert_fields, the connection's own
            guard_sqlite(db, None)
        except sqlite3.Error as exc:
            db.close()
            raise StoreUnavailableError(f"store {self.shown} cannot be read: {exc}") from None
        return db

    def _guarded(self, step: Any, run: QueryRun) -> Any:
        try:
            return step()
        except sqlite3.Error as exc:
            raise self._failure(exc, run) from None

    def _failure(self, exc: sqlite3.Error, run: QueryRun) -> Exception:
        text = str(exc)
        if "interrupted" in text:
            return run.stopped()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "unable to open" in text):
            return StoreUnavailableError(f"store {self.shown} cannot be read: {exc}")
        return TapQueryError(f"the query failed in the database: {exc}")
