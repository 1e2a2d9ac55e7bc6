"""The latest stored alerts as rows: their fields, their history counts up to each alert, and their
annotations, as a filter sees an alert (see ``starling.adql.history``, which judges them)."""

from __future__ import annotations

import json
from typing import Any

from starling.store.base import AlertStore

# The history counts up to each alert, as the alert itself carried them.
_ROWS = """
SELECT a.survey, a.alert_id, a.object_id, a.ra, a.dec, a.mjd, a.band, a.mag, a.mag_err, a.flux,
       a.flux_err, a.reliability, a.schema_version,
       CASE WHEN a.flux_err > 0 THEN abs(a.flux) / a.flux_err END AS snr,
       (SELECT count(*) FROM detections d
         WHERE d.survey = a.survey AND d.object_id = a.object_id AND d.mjd <= a.mjd) AS ndethist,
       (SELECT count(*) FROM non_detections n
         WHERE n.survey = a.survey AND n.object_id = a.object_id AND n.mjd < a.mjd) AS nnondethist,
       (SELECT count(*) FROM forced_photometry f
         WHERE f.survey = a.survey AND f.object_id = a.object_id AND f.mjd < a.mjd) AS nforcedhist,
       (SELECT min(d.mjd) FROM detections d
         WHERE d.survey = a.survey AND d.object_id = a.object_id AND d.mjd <= a.mjd) AS first_mjd
FROM alerts a ORDER BY a.mjd DESC LIMIT ?
"""


def latest_alert_rows(store: AlertStore, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` latest alerts (by time, newest first) as rows, with ``annotations`` by annotator."""
    rows = store.query(_ROWS, (limit,))
    if not rows:
        return rows
    by_key = {(r["survey"], r["alert_id"]): r for r in rows}
    for row in rows:
        row["annotations"] = {}
        first = row["first_mjd"] if row["first_mjd"] is not None else row["mjd"]
        row["first_mjd"] = first
        row["age_days"] = row["mjd"] - first
    oldest = min(r["mjd"] for r in rows)
    annotations = store.query(
        "SELECT n.survey, n.alert_id, n.annotator, n.payload FROM annotations n "
        "JOIN alerts a ON a.survey = n.survey AND a.alert_id = n.alert_id WHERE a.mjd >= ?",
        (oldest,),
    )
    for note in annotations:
        owner = by_key.get((note["survey"], note["alert_id"]))
        if owner is not None:
            owner["annotations"][note["annotator"]] = json.loads(note["payload"])
    return rows
