"""The PostgreSQL store: for a cluster, where every replica of the distribute stage writes to one database.

One transaction per batch, as on SQLite, and the same rows (``starling.store.rows``): history rows go
in by ``COPY`` into a temporary table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in key
order, so any number of writers, in any order, replaying or not, leave the same rows and never
deadlock one another. The tables that grow with every alert are partitioned by time (30 days of MJD a
partition, added as the writer meets them), so retention drops partitions instead of deleting rows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from starling.alert.model import Alert
from starling.errors import StoreError, StoreUnavailableError
from starling.store import migrate
from starling.store.base import TABLE_KEYS, TABLES, AlertStore, WriteCounts
from starling.store.cutouts import CutoutFiles
from starling.store.location import shown_location
from starling.store.object_merge import OBJECT_COLUMNS, on_conflict_merge
from starling.store.retention import TIMED_TABLES, RetentionPolicy
from starling.store.rows import SPAN_COLUMNS, BatchRows, StoredHistory, batch_rows, object_keys

PARTITION_DAYS = 30
PARTITIONED = ("alerts", "detections", "non_detections", "forced_photometry", "filter_matches")
_PARTITION_LOCK = 0x50415254  # advisory lock of partition creation ("PART")

_COLUMNS = {
    "objects": OBJECT_COLUMNS,
    "alerts": (
        "survey",
        "alert_id",
        "object_id",
        "mjd",
        "ra",
        "dec",
        "band",
        "mag",
        "mag_err",
        "flux",
        "flux_err",
        "reliability",
        "schema_version",
        "cutouts",
        "provenance",
    ),
    "detections": (
        "survey",
        "detection_id",
        "object_id",
        "mjd",
        "band",
        "ra",
        "dec",
        "mag",
        "mag_err",
        "flux",
        "flux_err",
    ),
    "non_detections": ("survey", "object_id", "mjd", "band", "limiting_mag", "limiting_flux"),
    "forced_photometry": ("survey", "object_id", "mjd", "band", "flux", "flux_err"),
    "annotations": ("survey", "alert_id", "annotator", "payload", "mjd"),
    "filter_matches": ("filter", "survey", "alert_id", "object_id", "mjd"),
}
_ON_CONFLICT = {
    "objects": on_conflict_merge("LEAST", "GREATEST"),
    "annotations": "ON CONFLICT (survey, alert_id, annotator) DO UPDATE SET payload = excluded.payload, "
    "mjd = excluded.mjd",
}
# Written in this order. The objects first, in key order, existing or new: every other row belongs to
# one of them, so writers that share objects queue on the first of them, and never deadlock.
_WRITE_ORDER = (
    "objects",
    "alerts",
    "detections",
    "non_detections",
    "forced_photometry",
    "annotations",
    "filter_matches",
)

# What the rows can be at fault for; every other error (connection, locks, deadlock, disk, shutdown)
# is the store's and is waited out.
_DATA_ERRORS = (pg_errors.DataError, pg_errors.IntegrityError)


def _partition_start(mjd: float) -> int:
    return math.floor(mjd / PARTITION_DAYS) * PARTITION_DAYS


def _partition_name(table: str, start: int) -> str:
    return f"{table}_p{start}" if start >= 0 else f"{table}_m{-start}"


class PostgresStore(AlertStore):
    def __init__(self, url: str, lock_timeout_s: float = 60.0, cutouts: Path | None = None) -> None:
        self.url = url
        self.shown = shown_location(url)
        self.lock_timeout_s = lock_timeout_s
        self.cutout_files = CutoutFiles(cutouts) if cutouts is not None else None
        self._lock = threading.Lock()
        self._partitions: set[tuple[str, int]] = set()
        self._next_ahead_try = 0.0  # when to try making the next window's partitions again
        self._conn: psycopg.Connection[Any] | None = None
        self._staged = False  # whether this connection has its staging tables
        with self._lock:
            conn = self._connection()
            try:
                revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except pg_errors.UndefinedTable:
                revision = None
            conn.rollback()
        if revision is None or revision[0] != migrate.HEAD:
            migrate.upgrade(url)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(
                    self.url,
                    connect_timeout=10,
                    options=f"-c lock_timeout={int(self.lock_timeout_s * 1000)}",
                    application_name="starling",
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(
                    f"PostgreSQL store {self.shown} cannot be reached: {exc}"
                ) from exc
            self._staged = False
        return self._conn

    def _staging_tables(self, conn: psycopg.Connection[Any]) -> None:
        """One staging table per table, for COPY; emptied at every commit."""
        if self._staged:
            return
        for table in _WRITE_ORDER:
            conn.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS staged_{table} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
        conn.commit()
        self._staged = True

    def _error(self, exc: psycopg.Error) -> StoreError | StoreUnavailableError:
        if isinstance(exc, _DATA_ERRORS):
            return StoreError(f"PostgreSQL store {self.shown}: batch not written: {exc}")
        return StoreUnavailableError(f"PostgreSQL store {self.shown} cannot be written: {exc}")

    def _ensure_partitions(self, conn: psycopg.Connection[Any], rows: BatchRows) -> None:
        present = {
            (table, _partition_start(row[_COLUMNS[table].index("mjd")]))
            for table in PARTITIONED
            for row in getattr(rows, table)
        }
        needed = present - self._partitions
        if needed:
            self._create_partitions(conn, needed, wait=True)
            self._partitions |= needed
        # The next window's partitions, made before any row needs them. Making one locks its parent
        # table, so it waits for every query reading the table (TAP's included); ahead of time it need not
        # wait: with a short lock timeout it is tried at a later batch when readers hold the table.
        ahead = {(table, start + PARTITION_DAYS) for table, start in present} - self._partitions
        if ahead and time.monotonic() >= self._next_ahead_try:
            try:
                self._create_partitions(conn, ahead, wait=False)
                self._partitions |= ahead
            except psycopg.errors.LockNotAvailable:
                self._next_ahead_try = time.monotonic() + 30.0

    @staticmethod
    def _create_partitions(conn: psycopg.Connection[Any], wanted: set[tuple[str, int]], wait: bool) -> None:
        # In a transaction of its own: creating a partition locks its table briefly; replicas take turns.
        with conn.transaction():
            if not wait:
                conn.execute("SET LOCAL lock_timeout = '200ms'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            for table, start in sorted(wanted):
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_partition_name(table, start)} PARTITION OF {table} "
                    f"FOR VALUES FROM ({start}) TO ({start + PARTITION_DAYS})"
                )

    def _stored_history(
        self, conn: psycopg.Connection[Any], alerts: Sequence[Alert]
    ) -> dict[tuple[str, str], StoredHistory]:
        keys = object_keys(alerts)
        cursor = conn.execute(
            f"SELECT survey, object_id, {', '.join(SPAN_COLUMNS)} FROM objects "
            "WHERE (survey, object_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        return {(row[0], row[1]): StoredHistory.from_columns(row[2:]) for row in cursor}

    @staticmethod
    def _copy(conn: psycopg.Connection[Any], table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        columns = _COLUMNS[table]
        with conn.cursor().copy(f"COPY staged_{table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conflict = _ON_CONFLICT.get(table, "ON CONFLICT DO NOTHING")
        conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM staged_{table} "
            f"ORDER BY {TABLE_KEYS[table]} {conflict}"
        )

    def write(self, alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> WriteCounts:
        files = self.cutout_files
        refs = files.write(alerts) if files is not None else None
        with self._lock:
            conn = self._connection()
            try:
                self._staging_tables(conn)
                with conn.transaction():
                    rows = batch_rows(alerts, matches, self._stored_history(conn, alerts), refs)
                self._ensure_partitions(conn, rows)
                with conn.transaction():
                    for table in _WRITE_ORDER:
                        batch = getattr(rows, table)
                        if batch:
                            self._copy(conn, table, batch)
            except psycopg.Error as exc:
                if not conn.closed:
                    conn.rollback()
                raise self._error(exc) from exc
        return WriteCounts(len(rows.alerts), rows.history_rows(), rows.history_rows_skipped)

    def prune(self, policy: RetentionPolicy) -> dict[str, int]:
        limits = self.retention_limits(policy)
        if not limits:
            return {}
        removed: dict[str, int] = {}
        with self._lock:
            conn = self._connection()
            try:
                for table in TIMED_TABLES:
                    if table not in limits:
                        continue
                    removed[table] = self._drop_partitions(conn, table, limits[table])
                    with conn.transaction():
                        cursor = conn.execute(f"DELETE FROM {table} WHERE mjd < %s", (limits[table],))
                    removed[table] += max(cursor.rowcount, 0)
            except psycopg.Error as exc:
                if not conn.closed:
                    conn.rollback()
                raise self._error(exc) from exc
        if "cutouts" in limits and self.cutout_files is not None:
            removed["cutouts"] = self.cutout_files.prune(limits["cutouts"])
        return removed

    def _drop_partitions(self, conn: psycopg.Connection[Any], table: str, limit: float) -> int:
        """Drop the partitions of ``table`` wholly before ``limit``; the rows they held."""
        if table not in PARTITIONED:
            return 0
        dropped = 0
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            partitions = conn.execute(
                "SELECT c.relname, c.reltuples FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                (table,),
            ).fetchall()
            for name, _ in partitions:
                suffix = name.removeprefix(f"{table}_")
                if suffix[:1] not in ("p", "m") or not suffix[1:].isdigit():
                    continue  # the default partition
                start = int(suffix[1:]) * (1 if suffix[0] == "p" else -1)
                if start + PARTITION_DAYS <= limit:
                    held = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
                    dropped += int(held[0]) if held else 0
                    conn.execute(f"DROP TABLE {name}")
                    self._partitions.discard((table, start))
        return dropped

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise StoreError(f"no table {table!r}; tables are {', '.join(TABLES)}")
        return int(self.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read-only query; ``?`` placeholders, as on SQLite, so callers write one query for both."""
        if parameters:
            sql = sql.replace("%", "%%").replace("?", "%s")
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    cursor = conn.execute(sql, tuple(parameters) or None)
                    names = [column.name for column in cursor.description or ()]
                    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(f"PostgreSQL store {self.shown} cannot be read: {exc}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"query failed: {exc}") from exc

    def close(self) -> None:
        if self.cutout_files is not None:
            self.cutout_files.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
