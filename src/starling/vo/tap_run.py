"""What the store readers of TAP share: one query's limits and reader, its errors, and the DDL of the
tables a query reads besides the store's (TAP_SCHEMA, uploads)."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from starling.errors import StarlingError
from starling.vo.tap_model import TapTable
from starling.vo.tap_upload import Upload


class TapQueryError(StarlingError):
    """A query refused or failed: the message is for the user (QUERY_STATUS=ERROR)."""


@dataclass
class QueryRun:
    """One query's limits (its time, a flag that stops it), its uploaded tables, and who reads
    (``viewer``: a user's name, None without a token), which decides the filter matches it sees."""

    timeout_s: float
    cancel: threading.Event
    uploads: tuple[Upload, ...] = ()
    viewer: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)

    def over(self) -> bool:
        return self.cancel.is_set() or time.monotonic() - self.started > self.timeout_s

    def stopped(self) -> TapQueryError:
        if self.cancel.is_set():
            return TapQueryError("the query was aborted")
        return TapQueryError(f"the query ran longer than {self.timeout_s:g} s and was stopped")


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


def tap_schema_ddl(table: TapTable, placeholder: str) -> tuple[str, str]:
    """The CREATE TABLE and INSERT of one TAP_SCHEMA table."""
    columns = ", ".join(f'"{c.name}" {_SQL_TYPES.get(c.datatype, "text")}' for c in table.columns)
    marks = ", ".join([placeholder] * len(table.columns))
    return (
        f'CREATE TABLE tap_schema."{table.name}" ({columns})',
        f'INSERT INTO tap_schema."{table.name}" VALUES ({marks})',
    )


def create_upload(cursor: Any, upload: Upload, backend: str) -> None:
    """An uploaded table for one query: in SQLite's attached memory database ``tap_upload``, or among
    PostgreSQL's temporary tables (dropped when the transaction ends)."""
    columns = ", ".join(f'"{column}" {upload.sql_type(kind, backend)}' for column, kind in upload.columns)
    marks = ", ".join(["%s" if backend == "postgres" else "?"] * len(upload.columns))
    if backend == "postgres":
        name = f"tap_upload_{upload.name}"
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({columns}) ON COMMIT DROP")
        cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", upload.rows)
        cursor.execute(f"ANALYZE {name}")  # the planner then knows its size: a join by q3c's index
    else:
        name = f"tap_upload.{upload.name}"
        cursor.execute(f"CREATE TABLE {name} ({columns})")
        cursor.executemany(f"INSERT INTO {name} VALUES ({marks})", upload.rows)
