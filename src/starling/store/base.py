"""The store's interface: what every backend (SQLite now, PostgreSQL later) provides.

Tables, all keyed so that writing the same alerts twice leaves the same rows (idempotent):

==================  ============================================  =====================================
table               one row per                                   key
==================  ============================================  =====================================
objects             object: latest position and summary           (survey, object_id)
alerts              alert: the triggering detection's fields      (survey, alert_id)
detections          detection of an object (from any alert)       (survey, detection_id)
non_detections      upper limit of an object                      (survey, object_id, mjd, band)
forced_photometry   forced-photometry point of an object          (survey, object_id, mjd, band)
annotations         what one annotator wrote about one alert      (survey, alert_id, annotator)
filter_matches      alert matched by a filter                     (filter, survey, alert_id)
==================  ============================================  =====================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from starling.alert.model import Alert

TABLES = (
    "objects",
    "alerts",
    "detections",
    "non_detections",
    "forced_photometry",
    "annotations",
    "filter_matches",
)


class AlertStore(ABC):
    """A place that keeps alerts, their history, annotations and filter matches."""

    @abstractmethod
    def write(self, alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> None:
        """Write one batch in one transaction: all of it or none of it."""

    @abstractmethod
    def count(self, table: str) -> int:
        """Rows in one of :data:`TABLES`."""

    @abstractmethod
    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only SQL query (the backend's dialect) and return rows as dicts."""

    @abstractmethod
    def close(self) -> None: ...

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in TABLES}
