"""``/api/alerts/{survey}/{alert_id}``: one alert, the detection that triggered it, with what the
broker's annotators wrote about it. Its cutouts are ``/api/alerts/{survey}/{alert_id}/cutouts/...``
(:mod:`starling.web.api.cutouts`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from starling.adql.literals import adql_number, adql_string
from starling.vo.tap_query import TapStore
from starling.web.api.common import (
    MAX_PAGE,
    NOT_FOUND,
    TOKEN,
    UNAVAILABLE,
    AlertIdPath,
    Store,
    SurveyPath,
    Viewer,
    not_found,
    read,
    user_of,
)

router = APIRouter(prefix="/alerts", tags=["alerts"])

ALERT_COLUMNS = (
    "survey, alert_id, object_id, mjd, ra, dec, band, mag, mag_err, flux, flux_err, reliability, "
    "schema_version, provenance"
)
# An alert's annotators, at most: one row each, and a deployment runs a handful.
_ANNOTATORS_PER_ALERT = 100


class AlertOut(BaseModel):
    """An alert: the detection that triggered it, as ``starling.alerts`` holds it."""

    survey: str
    alert_id: int = Field(description="ZTF candid, Rubin diaSourceId")
    object_id: str = Field(description="ZTF objectId, Rubin diaObjectId")
    mjd: float = Field(description="time of the detection, MJD (ZTF: start of exposure, UTC; Rubin: TAI)")
    ra: float = Field(description="degrees, ICRS")
    dec: float = Field(description="degrees, ICRS")
    band: str | None = Field(description="ZTF g, r, i; Rubin u, g, r, i, z, y")
    mag: float | None = Field(description="AB magnitude of the difference-image PSF photometry")
    mag_err: float | None
    flux: float | None = Field(description="difference-image PSF flux, nJy, signed")
    flux_err: float | None
    reliability: float | None = Field(description="probability (0 to 1) that the detection is real")
    schema_version: str | None = Field(description="the survey's alert schema it was written in")
    provenance: dict[str, int] | None = Field(
        None,
        description="the stages of the chain it passed, in order: each stage's configuration version, and "
        "as '<stage>.pipeline' the pipeline version it ran (null: one process ran every stage)",
    )

    @field_validator("provenance", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        return payload(value)


class AlertDetail(AlertOut):
    annotations: dict[str, Any] = Field(
        description="what each annotator wrote about the alert: annotator -> its payload (JSON)"
    )


def alert_where(survey: str, alert_id: int) -> str:
    return f"survey = {adql_string(survey)} AND alert_id = {adql_number(alert_id)}"


def alert_or_none(store: TapStore, survey: str, alert_id: int) -> AlertOut | None:
    rows = read(
        store, f"SELECT {ALERT_COLUMNS} FROM starling.alerts WHERE {alert_where(survey, alert_id)}", 1
    )
    return AlertOut(**rows.rows[0]) if rows.rows else None


def find_alert(store: TapStore, survey: str, alert_id: int) -> AlertOut:
    """The alert; 404 when the store holds none of that id."""
    found = alert_or_none(store, survey, alert_id)
    if found is None:
        raise not_found(f"no alert {survey} {alert_id} in the store")
    return found


def payload(text: Any) -> Any:
    """An annotation's payload, stored as JSON text: the value it encodes (the text, if it is not JSON)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def annotations_of(
    store: TapStore, survey: str, alert_ids: Sequence[int], viewer: str | None
) -> dict[int, dict[str, Any]]:
    """Each alert's annotations (annotator -> payload) that ``viewer`` may read (the broker's, and those
    kept as the viewer's, ``<user>.<annotator>``: ``starling.store.access``), for at most MAX_PAGE
    alerts of one survey."""
    if not alert_ids:
        return {}
    if len(alert_ids) > MAX_PAGE:
        raise ValueError(f"at most {MAX_PAGE} alerts at once, not {len(alert_ids)}")
    ids = ", ".join(adql_number(int(alert_id)) for alert_id in alert_ids)
    rows = read(
        store,
        "SELECT alert_id, annotator, payload FROM starling.annotations "
        f"WHERE survey = {adql_string(survey)} AND alert_id IN ({ids}) ORDER BY alert_id, annotator",
        len(alert_ids) * _ANNOTATORS_PER_ALERT,
        viewer,
    )
    found: dict[int, dict[str, Any]] = {int(alert_id): {} for alert_id in alert_ids}
    for row in rows.rows:
        found[int(row["alert_id"])][str(row["annotator"])] = payload(row["payload"])
    return found


@router.get(
    "/{survey}/{alert_id}",
    response_model=AlertDetail,
    summary="One alert",
    description="The alert's triggering detection (time, position, band, magnitude and flux with their "
    "errors, reliability) and its annotations. Its cutouts: "
    "`/api/alerts/{survey}/{alert_id}/cutouts/{role}.png` or `.fits`.",
    responses={**NOT_FOUND, **UNAVAILABLE, **TOKEN},
)
def get_alert(survey: SurveyPath, alert_id: AlertIdPath, store: Store, who: Viewer) -> AlertDetail:
    alert = find_alert(store, survey, alert_id)
    annotations = annotations_of(store, survey, [alert_id], user_of(who))[alert_id]
    return AlertDetail(**alert.model_dump(), annotations=annotations)
