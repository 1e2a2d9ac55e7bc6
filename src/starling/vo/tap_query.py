"""Running ADQL on a store for TAP: the query checked and translated once (``starling.adql.query``), run
in the store's database by its reader (:mod:`starling.vo.tap_sqlite`, :mod:`starling.vo.tap_postgres`),
and its result handed out as it is read: the columns (with their metadata) once the first rows are in,
then the rows in chunks, then how it ended. A query that fails before its first rows fails the request
(QUERY_STATUS=ERROR); one that fails later (its time runs out while rows are being sent) ends its result
with the error. Rows are read up to MAXREC and one more, which tells an overflow.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlglot import exp

from starling.adql.parse import FilterSyntaxError
from starling.adql.query import Backend, CheckedQuery, ServedTable, check_query, parse_query
from starling.adql.sql_backend import to_sql
from starling.errors import StarlingError
from starling.store.location import is_postgres, shown_location, sqlite_path
from starling.vo.alert_fields import ALERT_FIELDS, POSTGRES_NAME
from starling.vo.tap_model import ResultEnd
from starling.vo.tap_postgres import PostgresReader
from starling.vo.tap_run import QueryRun, TapQueryError
from starling.vo.tap_schema import TAP_TABLES, TapColumn, TapTable, tap_schema_rows
from starling.vo.tap_sqlite import SqliteReader
from starling.vo.tap_upload import Upload
from starling.vo.votable import infer_column

__all__ = ["TapQueryError", "TapResult", "TapStore", "served_tables"]


class _Reader(Protocol):
    def stream(self, sql: str, run: QueryRun) -> Generator[Any, None, None]: ...

    def close(self) -> None: ...


@dataclass
class TapResult:
    """A query's result as it is read: ``chunks`` yields lists of rows (at most MAXREC in all); ``end``
    says how it ended once they are read. :meth:`close` gives its connection back (a response that
    stops early must call it); :meth:`all_rows` reads it whole, for callers that want it so."""

    columns: list[TapColumn]
    chunks: Iterator[list[tuple[Any, ...]]]
    end: ResultEnd
    sql: str  # what ran in the database
    _source: Generator[Any, None, None] | None = field(repr=False, default=None)

    def close(self) -> None:
        try:
            if self._source is not None:
                self._source.close()
        except ValueError:  # being read in another thread right now: it closes when that read ends
            pass

    def all_rows(self) -> list[tuple[Any, ...]]:
        try:
            return [row for chunk in self.chunks for row in chunk]
        finally:
            self.close()


def served_tables() -> dict[str, ServedTable]:
    """Every table TAP serves, by its ADQL name in lower case, and the store's tables by bare name too."""
    served: dict[str, ServedTable] = {}
    for table in TAP_TABLES:
        adql = f"{table.schema}.{table.name}"
        columns = tuple(c.name.lower() for c in table.columns)
        backend_name = table.name if table.schema.lower() == "starling" else f"tap_schema.{table.name}"
        postgres_name = POSTGRES_NAME if table is ALERT_FIELDS else backend_name  # a schema of its own
        entry = ServedTable(adql, columns, backend_name, postgres_name)
        served[adql.lower()] = entry
        if table.schema.lower() == "starling":
            served[table.name.lower()] = entry
    return served


def _tap_schema_tables() -> list[TapTable]:
    return [t for t in TAP_TABLES if t.schema.upper() == "TAP_SCHEMA"]


def _limited(
    first: list[tuple[Any, ...]], rest: Generator[Any, None, None], maxrec: int, end: ResultEnd
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows, at most ``maxrec`` of them (``end.overflow`` when there were more); a failure while
    reading ends them with ``end.error``."""
    left = maxrec
    try:
        for chunk in itertools.chain([first], rest):
            if len(chunk) > left:
                end.overflow = True
                if left:
                    yield chunk[:left]
                return
            left -= len(chunk)
            if chunk:
                yield chunk
    except StarlingError as exc:
        end.error = str(exc)
    finally:
        rest.close()  # the connection goes back as soon as the last row wanted is read


class TapStore:
    """A store as TAP reads it."""

    def __init__(
        self, location: str | Path, timeout_s: float = 30.0, pool_size: int = 4, describe: bool = True
    ) -> None:
        """``describe``: fill TAP_SCHEMA (PostgreSQL), as a service does when it starts; a reader that
        runs its own queries only (a filter's trial) leaves it to the service."""
        self.location = location
        self.shown = shown_location(location)
        self.timeout_s = timeout_s
        self.backend: Backend = "postgres" if is_postgres(location) else "sqlite"
        self.served = served_tables()
        self._columns = {
            f"{t.schema}.{t.name}".lower(): {c.name.lower(): c for c in t.columns} for t in TAP_TABLES
        }
        schema_rows = tap_schema_rows()
        self._reader: _Reader
        if self.backend == "postgres":
            reader = PostgresReader(str(location), self.shown, pool_size)
            if describe:
                reader.install_tap_schema(_tap_schema_tables(), schema_rows)
            reader.install_views()
            self._reader = reader
        else:
            self._reader = SqliteReader(sqlite_path(location), self.shown, _tap_schema_tables(), schema_rows)

    def close(self) -> None:
        self._reader.close()

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
        viewer: str | None = None,
    ) -> TapResult:
        """Start a query: at most ``maxrec`` rows, for at most ``timeout_s`` (the service's sync limit
        when None), stopped as soon as ``cancel`` is set (an async job aborted); ``uploads`` are its
        TAP_UPLOAD tables; ``viewer`` (a user, None without a token) decides which filter matches it
        sees. Raises TapQueryError (or StoreUnavailableError) when it fails before its first rows."""
        checked = self.check(text, uploads)
        sql = to_sql(checked, self.backend)
        run = QueryRun(timeout_s or self.timeout_s, cancel or threading.Event(), tuple(uploads), viewer)
        source = self._reader.stream(sql, run)
        try:
            names: list[str] = next(source)
            first: list[tuple[Any, ...]] = next(source, [])
        except BaseException:
            source.close()
            raise
        known = dict(self._columns)
        for upload in uploads:  # an uploaded column comes back as it was sent (its xtype kept)
            known[f"tap_upload.{upload.name}"] = {
                column: TapColumn(column, kind, "", arraysize="*" if kind == "char" else None, xtype=xtype)
                for (column, kind), xtype in zip(
                    upload.columns, upload.xtypes or [None] * len(upload.columns), strict=True
                )
            }
        columns = self._result_columns(checked, names, first, known)
        end = ResultEnd()
        return TapResult(columns, _limited(first, source, maxrec, end), end, sql, source)

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
