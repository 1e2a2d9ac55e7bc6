"""The SQLite store: the embedded default. One file, WAL mode, one transaction per batch."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from starling.alert.model import Alert
from starling.errors import StoreError, StoreUnavailableError
from starling.store import migrate
from starling.store.base import TABLES, AlertStore, WriteCounts
from starling.store.cutouts import CutoutFiles
from starling.store.object_merge import OBJECT_COLUMNS, on_conflict_merge
from starling.store.retention import TIMED_TABLES, RetentionPolicy
from starling.store.rows import SPAN_COLUMNS, StoredHistory, batch_rows, object_keys

_UPSERT_OBJECT = (
    f"INSERT INTO objects ({', '.join(OBJECT_COLUMNS)}) VALUES ({', '.join('?' * len(OBJECT_COLUMNS))}) "
    + on_conflict_merge("min", "max")
)
_INSERTS = {
    "alerts": "INSERT OR IGNORE INTO alerts (survey, alert_id, object_id, mjd, ra, dec, band, mag, mag_err, "
    "flux, flux_err, reliability, schema_version, cutouts, provenance) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "detections": "INSERT OR IGNORE INTO detections VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "non_detections": "INSERT OR IGNORE INTO non_detections VALUES (?,?,?,?,?,?)",
    "forced_photometry": "INSERT OR IGNORE INTO forced_photometry VALUES (?,?,?,?,?,?)",
    "annotations": "INSERT OR REPLACE INTO annotations (survey, alert_id, annotator, payload, mjd) "
    "VALUES (?,?,?,?,?)",
    "filter_matches": "INSERT OR IGNORE INTO filter_matches VALUES (?,?,?,?,?)",
}
# SQLite allows 32766 host parameters a statement; objects are looked up in chunks well below that.
_LOOKUP_CHUNK = 400

# What the rows of a batch can be at fault for; any other SQLite error is the store's own (locked,
# disk full, I/O, read-only, a file that cannot be opened) and is waited out, not blamed on alerts.
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError)


def _write_error(path: Path, exc: sqlite3.Error) -> StoreError | StoreUnavailableError:
    if isinstance(exc, _DATA_ERRORS):
        return StoreError(f"SQLite store {path}: batch not written: {exc}")
    return StoreUnavailableError(f"SQLite store {path} cannot be written: {exc}")


class SQLiteStore(AlertStore):
    def __init__(self, path: Path, lock_timeout_s: float = 60.0, cutouts: Path | None = None) -> None:
        self.path = path
        self.cutout_files = CutoutFiles(cutouts) if cutouts is not None else None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Replicas of a sink stage may share one file: wait for the writer's lock, do not fail.
            self._db.execute(f"PRAGMA busy_timeout={int(lock_timeout_s * 1000)}")
            if self._revision() != migrate.HEAD:
                migrate.upgrade(path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from exc
        self._lock = threading.Lock()

    def _revision(self) -> str | None:
        try:
            row = self._db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:  # no such table: a new store, or one made before migrations
            return None
        return str(row[0]) if row else None

    def _stored_history(self, alerts: Sequence[Alert]) -> dict[tuple[str, str], StoredHistory]:
        stored: dict[tuple[str, str], StoredHistory] = {}
        keys = object_keys(alerts)
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            wanted = " OR ".join(["(survey = ? AND object_id = ?)"] * len(chunk))
            cursor = self._db.execute(
                f"SELECT survey, object_id, {', '.join(SPAN_COLUMNS)} FROM objects WHERE {wanted}",
                [value for key in chunk for value in key],
            )
            for row in cursor:
                stored[(row[0], row[1])] = StoredHistory.from_columns(row[2:])
        return stored

    def write(self, alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> WriteCounts:
        files = self.cutout_files
        refs = files.write(alerts) if files is not None else None
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # the write lock first: what is read stays true
                rows = batch_rows(alerts, matches, self._stored_history(alerts), refs)
                self._db.executemany(_UPSERT_OBJECT, rows.objects)
                for table, statement in _INSERTS.items():
                    self._db.executemany(statement, getattr(rows, table))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise _write_error(self.path, exc) from exc
        return WriteCounts(len(rows.alerts), rows.history_rows(), rows.history_rows_skipped)

    def prune(self, policy: RetentionPolicy) -> dict[str, int]:
        limits = self.retention_limits(policy)
        if not limits:
            return {}
        removed: dict[str, int] = {}
        with self._lock:
            for table in TIMED_TABLES:
                if table in limits:
                    try:
                        cursor = self._db.execute(f"DELETE FROM {table} WHERE mjd < ?", (limits[table],))
                    except sqlite3.Error as exc:
                        raise _write_error(self.path, exc) from exc
                    removed[table] = cursor.rowcount
        if "cutouts" in limits and self.cutout_files is not None:
            removed["cutouts"] = self.cutout_files.prune(limits["cutouts"])
        return removed

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise StoreError(f"no table {table!r}; tables are {', '.join(TABLES)}")
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0])

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cursor = self._db.execute(sql, tuple(parameters))
            except sqlite3.Error as exc:
                raise StoreError(f"query failed: {exc}") from exc
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        if self.cutout_files is not None:
            self.cutout_files.close()
        with self._lock:
            self._db.close()
