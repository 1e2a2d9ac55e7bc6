"""The rows a batch becomes in the store's tables: the mapping every backend shares.

A backend (SQLite, PostgreSQL) only decides how to write these rows; which rows an alert makes, and
in which column order (the order of :data:`starling.store.base.TABLES`' columns), is decided here once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starling.alert.model import Alert

Row = tuple[Any, ...]


@dataclass(slots=True)
class BatchRows:
    """One batch as rows, table by table."""

    objects: list[Row] = field(default_factory=list)
    alerts: list[Row] = field(default_factory=list)
    detections: list[Row] = field(default_factory=list)
    non_detections: list[Row] = field(default_factory=list)
    forced_photometry: list[Row] = field(default_factory=list)
    annotations: list[Row] = field(default_factory=list)
    filter_matches: list[Row] = field(default_factory=list)


def _object_row(a: Alert) -> Row:
    history = a.history
    first_mjd = history.detections[0].mjd if history.detections else a.mjd
    return (
        a.survey,
        a.object_id,
        a.ra,
        a.dec,
        first_mjd,
        a.mjd,
        a.alert_id,
        a.band,
        a.mag,
        a.flux,
        len(history.detections),
        len(history.upper_limits),
    )


def _alert_row(a: Alert) -> Row:
    return (
        a.survey,
        a.alert_id,
        a.object_id,
        a.mjd,
        a.ra,
        a.dec,
        a.band,
        a.mag,
        a.mag_err,
        a.flux,
        a.flux_err,
        a.reliability,
        a.schema_version,
    )


def batch_rows(alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> BatchRows:
    """Every row the batch writes (history rows included; the keys make a second write a no-op)."""
    rows = BatchRows()
    for a in alerts:
        history = a.history
        survey, object_id = a.survey, a.object_id
        rows.objects.append(_object_row(a))
        rows.alerts.append(_alert_row(a))
        rows.detections.extend(
            (
                survey,
                d.detection_id,
                object_id,
                d.mjd,
                d.band,
                d.ra,
                d.dec,
                d.mag,
                d.mag_err,
                d.flux,
                d.flux_err,
            )
            for d in history.detections
        )
        rows.non_detections.extend(
            (survey, object_id, u.mjd, u.band, u.limiting_mag, u.limiting_flux) for u in history.upper_limits
        )
        rows.forced_photometry.extend(
            (survey, object_id, f.mjd, f.band, f.flux, f.flux_err) for f in history.forced
        )
        rows.annotations.extend(
            (survey, a.alert_id, name, json.dumps(payload, default=str))
            for name, payload in a.annotations.items()
        )
    rows.filter_matches = [
        (name, a.survey, a.alert_id, a.object_id, a.mjd) for name, matched in matches.items() for a in matched
    ]
    return rows
