"""The survey-neutral record Starling hands to users: one shape for ZTF and Rubin, JSON or Avro.

It carries the triggering detection, the light curve (detections and upper limits), the annotations
(as a JSON string in Avro, whose schema cannot know every annotator's fields) and, if asked, the
cutouts as FITS bytes (base64 in JSON).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from starling.alert.model import Alert

_NULLABLE_DOUBLE = ["null", "double"]

# The Avro fields of Alert.summary(): shared by the output record and the inter-stage envelope.
SUMMARY_FIELDS: list[dict[str, Any]] = [
    {"name": "survey", "type": "string"},
    {"name": "alert_id", "type": "long"},
    {"name": "object_id", "type": "string"},
    {"name": "ra", "type": "double"},
    {"name": "dec", "type": "double"},
    {"name": "mjd", "type": "double"},
    {"name": "band", "type": "string"},
    {"name": "mag", "type": _NULLABLE_DOUBLE},
    {"name": "mag_err", "type": _NULLABLE_DOUBLE},
    {"name": "flux", "type": _NULLABLE_DOUBLE},
    {"name": "flux_err", "type": _NULLABLE_DOUBLE},
    {"name": "reliability", "type": _NULLABLE_DOUBLE},
    {"name": "schema_version", "type": "string"},
]

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "alert",
    "namespace": "starling.v1",
    "doc": "A matched alert, normalized by Starling. Magnitudes AB, fluxes nJy, times MJD.",
    "fields": [
        {"name": "filter", "type": "string"},
        *SUMMARY_FIELDS,
        {
            "name": "detections",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "point",
                    "fields": [
                        {"name": "mjd", "type": "double"},
                        {"name": "band", "type": "string"},
                        {"name": "mag", "type": _NULLABLE_DOUBLE},
                        {"name": "mag_err", "type": _NULLABLE_DOUBLE},
                        {"name": "flux", "type": _NULLABLE_DOUBLE},
                        {"name": "flux_err", "type": _NULLABLE_DOUBLE},
                    ],
                },
            },
        },
        {
            "name": "upper_limits",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "limit",
                    "fields": [
                        {"name": "mjd", "type": "double"},
                        {"name": "band", "type": "string"},
                        {"name": "limiting_mag", "type": _NULLABLE_DOUBLE},
                    ],
                },
            },
        },
        {"name": "annotations_json", "type": "string"},
        {"name": "cutouts", "type": {"type": "map", "values": "bytes"}, "default": {}},
    ],
}


def output_record(alert: Alert, filter_name: str, include_cutouts: bool = False) -> dict[str, Any]:
    """The alert as a record of :data:`OUTPUT_SCHEMA` (cutouts as bytes)."""
    history = alert.history
    return {
        "filter": filter_name,
        **alert.summary(),
        "detections": [
            {
                "mjd": d.mjd,
                "band": d.band,
                "mag": d.mag,
                "mag_err": d.mag_err,
                "flux": d.flux,
                "flux_err": d.flux_err,
            }
            for d in history.detections
        ],
        "upper_limits": [
            {"mjd": u.mjd, "band": u.band, "limiting_mag": u.limiting_mag} for u in history.upper_limits
        ],
        "annotations_json": json.dumps(alert.annotations, default=str),
        "cutouts": {role: c.data for role, c in alert.cutouts.items()} if include_cutouts else {},
    }


def to_json_ready(record: dict[str, Any]) -> dict[str, Any]:
    """An output record for JSON: annotations as an object, cutout bytes as base64."""
    ready = dict(record)
    ready["annotations"] = json.loads(ready.pop("annotations_json"))
    ready["cutouts"] = {
        role: base64.b64encode(data).decode("ascii") for role, data in record["cutouts"].items()
    }
    return ready
