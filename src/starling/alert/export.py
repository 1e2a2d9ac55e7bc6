"""The survey-neutral record Starling hands to users: one shape for ZTF and Rubin, JSON or Avro.

It carries the triggering detection, the light curve (detections and upper limits), the annotations
(as a JSON string in Avro, whose schema cannot know every annotator's fields) and, if asked, the
cutouts as FITS bytes (base64 in JSON).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson

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


# Who owns what: a user's filter is ``<user>.<name>``, the broker's (the operator's) a bare name; an
# annotation's entry that names an ``owner`` (a user's watchlist hit) is that user's.
PUBLIC_OWNER = "operator"
OWNER_SEPARATOR = "."


def filter_owner(filter_name: str) -> str:
    """Who owns the filter ``filter_name`` (and so its matches)."""
    owner, separator, _ = filter_name.partition(OWNER_SEPARATOR)
    return owner if separator else PUBLIC_OWNER


def entry_owner(value: Any) -> str:
    """Who owns one entry of an annotation (a user's, when it names one; else the broker's)."""
    owner = value.get("owner") if isinstance(value, dict) else None
    if isinstance(owner, str) and owner and OWNER_SEPARATOR not in owner:
        return owner
    return PUBLIC_OWNER


def annotations_seen_by(annotations: dict[str, Any], viewer: str) -> dict[str, Any]:
    """The annotations ``viewer`` may be shown: every entry but those another user owns (the operator,
    as ``viewer``, is shown the broker's own; each user the broker's and its own)."""
    seen: dict[str, Any] = {}
    for annotator, payload in annotations.items():
        if not isinstance(payload, dict):
            seen[annotator] = payload
            continue
        kept = {k: v for k, v in payload.items() if entry_owner(v) in (PUBLIC_OWNER, viewer)}
        if kept or not payload:
            seen[annotator] = kept
    return seen


def output_record(alert: Alert, filter_name: str, include_cutouts: bool = False) -> dict[str, Any]:
    """The alert as a record of :data:`OUTPUT_SCHEMA` (cutouts as bytes), as the owner of the filter
    ``filter_name`` may see it (no other user's watchlist hits)."""
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
        "annotations_json": json.dumps(
            annotations_seen_by(alert.annotations, filter_owner(filter_name)), default=str
        ),
        "cutouts": {role: c.data for role, c in alert.cutouts.items()} if include_cutouts else {},
    }


def json_bytes(record: dict[str, Any]) -> bytes:
    """An output record as JSON text (UTF-8, one line): what the files and Kafka deliveries write."""
    return orjson.dumps(to_json_ready(record))


def to_json_ready(record: dict[str, Any]) -> dict[str, Any]:
    """An output record for JSON: annotations as an object, cutout bytes as base64."""
    ready = dict(record)
    ready["annotations"] = json.loads(ready.pop("annotations_json"))
    ready["cutouts"] = {
        role: base64.b64encode(data).decode("ascii") for role, data in record["cutouts"].items()
    }
    return ready
