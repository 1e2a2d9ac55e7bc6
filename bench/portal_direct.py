"""The portal benchmark's baseline: the rows the object page and a cone show, read with plain SQL on a
plain connection kept open (``sqlite3`` read-only, or ``psycopg``), through the same indexes the API's
queries use; each row set read once. Only the filter matches anyone may see are read (the operator's
filters, as for an anonymous reader of the portal)."""

from __future__ import annotations

import math
from typing import Any

_ALERT = (
    "survey, alert_id, object_id, mjd, ra, dec, band, mag, mag_err, flux, flux_err, reliability, "
    "schema_version"
)
_OBJECT_SQL = (
    "SELECT survey, object_id, ra, dec, first_mjd, last_mjd, last_alert_id, last_band, last_mag, last_flux, "
    "n_detections, n_upper_limits FROM objects WHERE survey = ? AND object_id = ?"
)
_BY_OBJECT = "WHERE survey = ? AND object_id = ?"
_PAGE_SQL = {
    "alert": f"SELECT {_ALERT} FROM alerts WHERE survey = ? AND alert_id = ?",
    "n_alerts": f"SELECT count(*) FROM alerts {_BY_OBJECT}",
    "n_forced": f"SELECT count(*) FROM forced_photometry {_BY_OBJECT}",
    "detections": f"SELECT mjd, band, mag, mag_err, flux, flux_err FROM detections {_BY_OBJECT} ORDER BY mjd",
    "limits": f"SELECT mjd, band, limiting_mag, limiting_flux FROM non_detections {_BY_OBJECT} ORDER BY mjd",
    "forced": f"SELECT mjd, band, flux, flux_err FROM forced_photometry {_BY_OBJECT} ORDER BY mjd",
    "page": f"SELECT {_ALERT} FROM alerts {_BY_OBJECT} ORDER BY mjd DESC, alert_id DESC LIMIT 201",
    "annotations": "SELECT annotator, payload FROM annotations WHERE survey = ? AND alert_id = ? "
    "ORDER BY annotator",
}
_PUBLIC = {"sqlite": "instr(filter, '.') = 0", "postgres": "strpos(filter, '.') = 0"}
_MATCHES_SQL = (
    f"SELECT filter, alert_id, mjd FROM filter_matches {_BY_OBJECT} AND {{public}} "
    "ORDER BY filter, mjd DESC, alert_id DESC"
)
_CONE_COLUMNS = "survey, object_id, ra, dec, last_mjd, last_band, last_mag, n_detections"
_SQLITE_BAND = f"SELECT {_CONE_COLUMNS} FROM objects WHERE dec BETWEEN ? AND ?"
_POSTGRES_CONE = (
    f"SELECT {_CONE_COLUMNS}, q3c_dist(ra, dec, %s, %s) AS distance FROM objects "
    "WHERE q3c_radial_query(ra, dec, %s, %s, %s) ORDER BY distance, survey, object_id LIMIT 101"
)


def _distance_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine), degrees."""
    p1, p2 = math.radians(dec1), math.radians(dec2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


class DirectReads:
    """The baseline reader of one store."""

    def __init__(self, connection: Any, backend: str) -> None:
        self.db = connection
        self.backend = backend
        mark = "%s" if backend == "postgres" else "?"
        self.sql = {name: sql.replace("?", mark) for name, sql in _PAGE_SQL.items()}
        self.sql["object"] = _OBJECT_SQL.replace("?", mark)
        self.sql["matches"] = _MATCHES_SQL.format(public=_PUBLIC[backend]).replace("?", mark)

    def _rows(self, name: str, *parameters: Any) -> list[Any]:
        cursor = self.db.execute(self.sql[name], parameters)
        return list(cursor.fetchall())

    def object_page(self, survey: str, object_id: str) -> dict[str, Any]:
        """Every row the object page shows, each row set read once; what the portal's check compares."""
        key = (survey, object_id)
        found = self._rows("object", *key)[0]
        self._rows("alert", survey, found[6])
        points = sum(len(self._rows(name, *key)) for name in ("detections", "limits", "forced"))
        page = self._rows("page", *key)
        return {
            "points": points,
            "alerts": self._rows("n_alerts", *key)[0][0],
            "forced": self._rows("n_forced", *key)[0][0],
            "page": min(200, len(page)),
            "matched": len(self._rows("matches", *key)),
            "annotations": len(self._rows("annotations", survey, page[0][1])),
        }

    def cone(self, ra: float, dec: float, radius_arcsec: float) -> list[tuple[str, str]]:
        """The objects within the radius, nearest first (ties by survey and id), at most 101."""
        radius = radius_arcsec / 3600.0
        if self.backend == "postgres":
            rows = self._run(_POSTGRES_CONE, (ra, dec, ra, dec, radius))
            return [(row[0], row[1]) for row in rows]
        band = self._run(_SQLITE_BAND, (dec - radius, dec + radius))
        near = sorted(
            (d, row[0], row[1]) for row in band if (d := _distance_deg(ra, dec, row[2], row[3])) <= radius
        )
        return [(survey, object_id) for _, survey, object_id in near[:101]]

    def _run(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        return list(self.db.execute(sql, parameters).fetchall())

    def close(self) -> None:
        self.db.close()


def direct_reads(location: str) -> DirectReads:
    if location.startswith("postgresql"):
        import psycopg

        return DirectReads(psycopg.connect(location, autocommit=True), "postgres")
    import sqlite3

    return DirectReads(
        sqlite3.connect(f"file:{location}?mode=ro", uri=True, check_same_thread=False), "sqlite"
    )
