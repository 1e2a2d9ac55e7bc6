"""The SQLite store: the embedded default. One file, WAL mode, one transaction per batch."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from starling.alert.model import Alert
from starling.errors import StoreError, StoreUnavailableError
from starling.store.base import TABLES, AlertStore
from starling.store.rows import batch_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    survey TEXT NOT NULL, object_id TEXT NOT NULL,
    ra REAL NOT NULL, dec REAL NOT NULL,
    first_mjd REAL NOT NULL, last_mjd REAL NOT NULL,
    last_alert_id INTEGER NOT NULL, last_band TEXT, last_mag REAL, last_flux REAL,
    n_detections INTEGER NOT NULL, n_upper_limits INTEGER NOT NULL,
    PRIMARY KEY (survey, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    survey TEXT NOT NULL, alert_id INTEGER NOT NULL, object_id TEXT NOT NULL,
    mjd REAL NOT NULL, ra REAL NOT NULL, dec REAL NOT NULL, band TEXT,
    mag REAL, mag_err REAL, flux REAL, flux_err REAL, reliability REAL, schema_version TEXT,
    PRIMARY KEY (survey, alert_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_object ON alerts (survey, object_id, mjd);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (mjd);
CREATE TABLE IF NOT EXISTS detections (
    survey TEXT NOT NULL, detection_id INTEGER NOT NULL, object_id TEXT NOT NULL,
    mjd REAL NOT NULL, band TEXT, ra REAL, dec REAL,
    mag REAL, mag_err REAL, flux REAL, flux_err REAL,
    PRIMARY KEY (survey, detection_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS detections_by_object ON detections (survey, object_id, mjd);
CREATE TABLE IF NOT EXISTS non_detections (
    survey TEXT NOT NULL, object_id TEXT NOT NULL, mjd REAL NOT NULL, band TEXT NOT NULL,
    limiting_mag REAL, limiting_flux REAL,
    PRIMARY KEY (survey, object_id, mjd, band)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forced_photometry (
    survey TEXT NOT NULL, object_id TEXT NOT NULL, mjd REAL NOT NULL, band TEXT NOT NULL,
    flux REAL, flux_err REAL,
    PRIMARY KEY (survey, object_id, mjd, band)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotations (
    survey TEXT NOT NULL, alert_id INTEGER NOT NULL, annotator TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (survey, alert_id, annotator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS filter_matches (
    filter TEXT NOT NULL, survey TEXT NOT NULL, alert_id INTEGER NOT NULL,
    object_id TEXT NOT NULL, mjd REAL NOT NULL,
    PRIMARY KEY (filter, survey, alert_id)
) WITHOUT ROWID;
"""

# The object row follows its latest alert (by time), whatever order alerts arrive in; first_mjd
# only ever moves earlier. Both rules make a replay leave the rows as they were.
_FOLLOW_LATEST = (
    "ra",
    "dec",
    "last_alert_id",
    "last_band",
    "last_mag",
    "last_flux",
    "n_detections",
    "n_upper_limits",
)
_UPSERT_OBJECT = (
    "INSERT INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (survey, object_id) DO UPDATE SET "
    + ", ".join(
        f"{column} = CASE WHEN excluded.last_mjd >= objects.last_mjd "
        f"THEN excluded.{column} ELSE objects.{column} END"
        for column in _FOLLOW_LATEST
    )
    + ", first_mjd = min(objects.first_mjd, excluded.first_mjd)"
    + ", last_mjd = max(objects.last_mjd, excluded.last_mjd)"
)


# What the rows of a batch can be at fault for; any other SQLite error is the store's own (locked,
# disk full, I/O, read-only, a file that cannot be opened) and is waited out, not blamed on alerts.
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError)


def _write_error(path: Path, exc: sqlite3.Error) -> StoreError | StoreUnavailableError:
    if isinstance(exc, _DATA_ERRORS):
        return StoreError(f"SQLite store {path}: batch not written: {exc}")
    return StoreUnavailableError(f"SQLite store {path} cannot be written: {exc}")


class SQLiteStore(AlertStore):
    def __init__(self, path: Path, lock_timeout_s: float = 60.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Replicas of a sink stage may share one file: wait for the writer's lock, do not fail.
            self._db.execute(f"PRAGMA busy_timeout={int(lock_timeout_s * 1000)}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from exc
        self._lock = threading.Lock()

    def write(self, alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> None:
        rows = batch_rows(alerts, matches)
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(_UPSERT_OBJECT, rows.objects)
                self._db.executemany(
                    "INSERT OR IGNORE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows.alerts
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO detections VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows.detections
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO non_detections VALUES (?,?,?,?,?,?)", rows.non_detections
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO forced_photometry VALUES (?,?,?,?,?,?)", rows.forced_photometry
                )
                self._db.executemany("INSERT OR REPLACE INTO annotations VALUES (?,?,?,?)", rows.annotations)
                self._db.executemany(
                    "INSERT OR IGNORE INTO filter_matches VALUES (?,?,?,?,?)", rows.filter_matches
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise _write_error(self.path, exc) from exc

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
        with self._lock:
            self._db.close()
