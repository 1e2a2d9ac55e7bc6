"""``/api/objects/{survey}/{object_id}``: an object (where it is, how much of it the store holds, when
it was seen first and last, its latest alert) and ``.../alerts``, its alerts newest first, a page at a
time. Its light curve, annotations and filter matches are resources of their own (``lightcurve``,
``annotations``, ``matches``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.adql.literals import adql_number, adql_string
from starling.vo.tap_query import TapStore
from starling.web.api.alerts import ALERT_COLUMNS, AlertOut, alert_or_none
from starling.web.api.common import (
    NOT_FOUND,
    UNAVAILABLE,
    Limit,
    ObjectIdPath,
    Offset,
    Rows,
    Store,
    SurveyPath,
    one,
    read,
)

router = APIRouter(prefix="/objects", tags=["objects"])

_OBJECT_COLUMNS = (
    "survey, object_id, ra, dec, first_mjd, last_mjd, last_alert_id, last_band, last_mag, last_flux, "
    "n_detections, n_upper_limits"
)


class ObjectOut(BaseModel):
    """An object as ``starling.objects`` holds it, with how many alerts and forced points it has."""

    survey: str
    object_id: str
    ra: float = Field(description="degrees, ICRS, from its latest alert")
    dec: float = Field(description="degrees, ICRS, from its latest alert")
    first_mjd: float = Field(description="time of its first alert received (MJD)")
    last_mjd: float = Field(description="time of its latest alert received (MJD)")
    n_alerts: int = Field(description="alerts of it the store holds")
    n_detections: int = Field(description="detections the store holds (from every alert's history)")
    n_upper_limits: int = Field(description="non-detections (upper limits) the store holds")
    n_forced: int = Field(description="forced-photometry points the store holds")
    last_band: str | None
    last_mag: float | None
    last_flux: float | None = Field(description="nJy, signed")
    latest_alert: AlertOut | None = Field(description="its latest alert (null if retention removed it)")


class AlertPage(BaseModel):
    survey: str
    object_id: str
    alerts: list[AlertOut] = Field(description="newest first")
    offset: int
    more: bool = Field(description="whether there are alerts after these (ask again with a larger offset)")


def object_where(survey: str, object_id: str) -> str:
    return f"survey = {adql_string(survey)} AND object_id = {adql_string(object_id)}"


def find_object(store: TapStore, survey: str, object_id: str) -> dict[str, Any]:
    """The object's row; 404 when the store holds none of that id."""
    rows = read(
        store, f"SELECT {_OBJECT_COLUMNS} FROM starling.objects WHERE {object_where(survey, object_id)}", 1
    )
    return one(rows, lambda: f"no object {survey} {object_id} in the store")


def _count(store: TapStore, table: str, survey: str, object_id: str) -> int:
    rows = read(
        store, f"SELECT COUNT(*) AS n FROM starling.{table} WHERE {object_where(survey, object_id)}", 1
    )
    return int(rows.rows[0]["n"])


def alert_page(store: TapStore, survey: str, object_id: str, limit: int, offset: int) -> Rows:
    """A page of the object's alerts, newest first (ties in time by id: one order, page after page)."""
    return read(
        store,
        f"SELECT TOP {limit + 1} {ALERT_COLUMNS} FROM starling.alerts "
        f"WHERE {object_where(survey, object_id)} "
        f"ORDER BY mjd DESC, alert_id DESC OFFSET {adql_number(offset)}",
        limit,
    )


@router.get(
    "/{survey}/{object_id}",
    response_model=ObjectOut,
    summary="One object",
    description="Where the object is, when it was seen first and last, how many alerts, detections, "
    "upper limits and forced points of it the store holds, and its latest alert.",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def get_object(survey: SurveyPath, object_id: ObjectIdPath, store: Store) -> ObjectOut:
    row = find_object(store, survey, object_id)
    # Retention may have removed the latest alert while its object stays: the object is still served.
    last = row["last_alert_id"]
    latest = alert_or_none(store, survey, int(last)) if last is not None else None
    return ObjectOut(
        **{key: value for key, value in row.items() if key != "last_alert_id"},
        n_alerts=_count(store, "alerts", survey, object_id),
        n_forced=_count(store, "forced_photometry", survey, object_id),
        latest_alert=latest,
    )


@router.get(
    "/{survey}/{object_id}/alerts",
    response_model=AlertPage,
    summary="An object's alerts",
    description="The object's alerts, newest first, `limit` at a time from `offset`.",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def get_object_alerts(
    survey: SurveyPath, object_id: ObjectIdPath, store: Store, limit: Limit = 100, offset: Offset = 0
) -> AlertPage:
    find_object(store, survey, object_id)
    page = alert_page(store, survey, object_id, limit, offset)
    return AlertPage(
        survey=survey,
        object_id=object_id,
        alerts=[AlertOut(**row) for row in page.rows],
        offset=offset,
        more=page.more,
    )
