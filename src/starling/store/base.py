"""The store's interface: what every backend (SQLite now, PostgreSQL later) provides.

Tables, all keyed so that writing the same alerts twice leaves the same rows (idempotent):

==================  ============================================  =====================================
table               one row per                                   key
==================  ============================================  =====================================
objects             object: latest position, summary, and the     (survey, object_id)
                    spans of its history already stored
alerts              alert: the triggering detection's fields,     (survey, alert_id)
                    and the names of its cutout files
detections          detection of an object (from any alert)       (survey, detection_id)
non_detections      upper limit of an object                      (survey, object_id, mjd, band)
forced_photometry   forced-photometry point of an object          (survey, object_id, mjd, band)
annotations         what one annotator wrote about one alert      (survey, alert_id, annotator)
filter_matches      alert matched by a filter                     (filter, survey, alert_id)
==================  ============================================  =====================================

The schema is Alembic's (``starling.store.migrations``); opening a store for writing migrates it. Cutouts
are files beside the tables (``starling.store.cutouts``); retention is ``starling.store.retention``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starling.alert.model import Alert
from starling.errors import StoreError
from starling.store.cutouts import CutoutFiles
from starling.store.retention import RetentionPolicy

TABLES = (
    "objects",
    "alerts",
    "detections",
    "non_detections",
    "forced_photometry",
    "annotations",
    "filter_matches",
)


# Each table's key, as ORDER BY and ON CONFLICT name it.
TABLE_KEYS = {
    "objects": "survey, object_id",
    "alerts": "survey, alert_id",
    "detections": "survey, detection_id",
    "non_detections": "survey, object_id, mjd, band",
    "forced_photometry": "survey, object_id, mjd, band",
    "annotations": "survey, alert_id, annotator",
    "filter_matches": "filter, survey, alert_id",
}


class AlertStore(ABC):
    """A place that keeps alerts, their history, annotations, cutouts and filter matches."""

    cutout_files: CutoutFiles | None = None

    @abstractmethod
    def write(self, alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> WriteCounts:
        """Write one batch in one transaction: all of it or none of it (its cutout files first)."""

    @abstractmethod
    def prune(self, policy: RetentionPolicy) -> dict[str, int]:
        """Remove what ``policy`` no longer keeps; rows (or cutout nights) removed, by table."""

    @abstractmethod
    def count(self, table: str) -> int:
        """Rows in one of :data:`TABLES`."""

    @abstractmethod
    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only SQL query (the backend's dialect, ``?`` placeholders) and return rows as dicts."""

    @abstractmethod
    def close(self) -> None: ...

    def retention_limits(self, policy: RetentionPolicy) -> dict[str, float]:
        """The times before which ``policy`` removes rows, counted back from the newest stored alert."""
        newest = self.query("SELECT max(mjd) AS newest FROM alerts")[0]["newest"]
        return {} if newest is None else policy.limits(float(newest))

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in TABLES}

    def cutout(self, survey: str, alert_id: int, role: str) -> bytes:
        """One cutout of a stored alert (``science``, ``template`` or ``difference``)."""
        if self.cutout_files is None:
            raise StoreError("this store keeps no cutouts")
        rows = self.query("SELECT cutouts FROM alerts WHERE survey = ? AND alert_id = ?", (survey, alert_id))
        if not rows:
            raise StoreError(f"no alert {survey} {alert_id} in the store")
        ref = json.loads(rows[0]["cutouts"] or "{}")
        if role not in ref:
            raise StoreError(f"alert {survey} {alert_id} has no {role} cutout")
        return self.cutout_files.read(ref, role)


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What one write did: alerts written, history rows written and history rows left out as stored."""

    alerts: int
    history_rows: int
    history_rows_skipped: int
