"""What travels between stages over Kafka: an envelope around the survey's own message.

The envelope carries the survey-neutral scalars of the alert (ids, position, time, band, photometry,
reliability), its annotations, the filters it matched so far, and the survey's original message
bytes, untouched. A stage that needs only the scalars (most filters, the routing of matches) never
decodes the survey record or its cutouts; a stage that needs the history or the cutouts decodes the
original message once, on first use. Nothing is ever re-encoded in the survey's format.

Framing: the two bytes ``b"S\\x01"`` (Starling envelope, version 1), then one schemaless Avro record
of :data:`ENVELOPE_SCHEMA`.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import fastavro

from starling.alert.decoder import AlertDecoder
from starling.alert.export import SUMMARY_FIELDS
from starling.alert.model import Alert
from starling.alert.rubin import build_rubin_history
from starling.alert.ztf import build_ztf_history
from starling.core.spec import COMPONENT_NAME_PATTERN
from starling.errors import AlertDecodeError

ENVELOPE_MAGIC = b"S\x01"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "envelope",
    "namespace": "starling.v1",
    "fields": [
        *SUMMARY_FIELDS,
        {"name": "origin", "type": "string"},
        {"name": "annotations_json", "type": "string"},
        {"name": "matches", "type": {"type": "array", "items": "string"}},
        {"name": "provenance", "type": {"type": "map", "values": "long"}, "default": {}},
        {"name": "payload", "type": "bytes"},
        # When each stage was done with it (Unix s), in order, after the survey's Kafka timestamp.
        {"name": "times", "type": {"type": "map", "values": "double"}, "default": {}},
    ],
}
_PARSED = fastavro.parse_schema(ENVELOPE_SCHEMA)
_HISTORY_BUILDERS = {"ztf": build_ztf_history, "rubin": build_rubin_history}


def encode_envelope(
    alert: Alert,
    payload: bytes,
    matches: list[str],
    provenance: dict[str, int] | None = None,
    times: dict[str, float] | None = None,
) -> bytes:
    """Wrap an alert for the next stage; ``payload`` is the survey message it was decoded from,
    ``provenance`` the configuration version of each stage it went through (the replica's own, under the
    stage's name; the controller's pipeline version, under ``<stage>.pipeline``, when it has one), and
    ``times`` when each was done with it (``starling.core.latency``)."""
    out = io.BytesIO()
    out.write(ENVELOPE_MAGIC)
    fastavro.schemaless_writer(
        out,
        _PARSED,
        {
            **alert.summary(),
            "origin": alert.origin,
            "annotations_json": json.dumps(alert.annotations, default=str),
            "matches": matches,
            "provenance": provenance or {},
            "payload": payload,
            "times": times or {},
        },
    )
    return out.getvalue()


class Envelope:
    """A decoded envelope: the alert (its record loaded lazily), the original bytes, the matches."""

    __slots__ = ("alert", "matches", "payload", "provenance", "times")

    def __init__(
        self,
        alert: Alert,
        payload: bytes,
        matches: list[str],
        provenance: dict[str, int],
        times: dict[str, float] | None = None,
    ) -> None:
        self.alert = alert
        self.payload = payload
        self.matches = matches
        self.provenance = provenance
        self.times = times or {}


def decode_envelope(data: bytes, decoder: AlertDecoder) -> Envelope:
    """Unwrap an envelope; the survey record is decoded from the payload only if someone asks."""
    if data[:2] != ENVELOPE_MAGIC:
        raise AlertDecodeError(f"not a Starling envelope (starts {data[:2]!r}, expected {ENVELOPE_MAGIC!r})")
    try:
        fields = fastavro.schemaless_reader(io.BytesIO(data[2:]), _PARSED)
        assert isinstance(fields, dict)
        survey = fields["survey"]
        history_builder = _HISTORY_BUILDERS[survey]
        annotations = json.loads(fields["annotations_json"])
    except Exception as exc:
        raise AlertDecodeError(f"corrupt Starling envelope: {type(exc).__name__}: {exc}") from exc
    payload: bytes = fields["payload"]
    alert_id: int = fields["alert_id"]
    matches = list(fields["matches"])
    for name in matches:  # they become file and folder names downstream
        if not re.fullmatch(COMPONENT_NAME_PATTERN, name):
            raise AlertDecodeError(f"envelope names a match {name[:80]!r} that is not a filter's name")

    decoded: list[Alert] = []  # the payload decoded once, for its fields and its whole record alike

    def load_alert() -> Alert:
        if not decoded:
            decoded.extend(c for c in decoder.decode(payload, fields["origin"]) if c.alert_id == alert_id)
        if not decoded:
            raise AlertDecodeError(f"alert {alert_id} is not in its own payload")
        return decoded[0]

    alert = Alert(
        survey=survey,
        alert_id=alert_id,
        object_id=fields["object_id"],
        ra=fields["ra"],
        dec=fields["dec"],
        mjd=fields["mjd"],
        band=fields["band"],
        mag=fields["mag"],
        mag_err=fields["mag_err"],
        flux=fields["flux"],
        flux_err=fields["flux_err"],
        reliability=fields["reliability"],
        schema_version=fields["schema_version"],
        record=None,
        history_builder=history_builder,
        origin=fields["origin"],
        record_loader=lambda: load_alert().record,
        fields_loader=lambda: load_alert().fields,
    )
    alert.annotations.update(annotations)
    provenance = dict(fields.get("provenance") or {})
    return Envelope(alert, payload, matches, provenance, dict(fields.get("times") or {}))
