"""``/api/objects/{survey}/{object_id}/lightcurve``: an object's light curve as a plot needs it, one
point per measurement, each with its time, band and kind, its magnitude and flux with their errors.

- ``detection`` (``starling.detections``): the survey's difference-image PSF magnitude and flux;
- ``upper_limit`` (``starling.non_detections``): the object was fainter than ``mag`` (the limiting
  magnitude), its difference flux below ``flux``; no errors;
- ``forced`` (``starling.forced_photometry``): the flux measured at the object's position, detected or
  not; its magnitude is derived, AB with the nJy zero point 31.4 (as the store does for Rubin's
  detections), and is null where the flux is not positive: a plot in magnitudes leaves those out, one in
  flux keeps them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.alert.photometry import flux_err_to_mag_err, flux_njy_to_mag
from starling.vo.tap_query import TapStore
from starling.web.api.common import (
    MAX_HISTORY_ROWS,
    NOT_FOUND,
    UNAVAILABLE,
    ObjectIdPath,
    Store,
    SurveyPath,
    read,
)
from starling.web.api.objects import find_object, object_where

router = APIRouter(prefix="/objects", tags=["objects"])

Kind = Literal["detection", "upper_limit", "forced"]
KINDS: tuple[Kind, ...] = ("detection", "upper_limit", "forced")

# Each kind's table, and its columns as a point's mjd, band, mag, mag_err, flux, flux_err.
_SOURCES: dict[Kind, tuple[str, str]] = {
    "detection": ("detections", "mjd, band, mag, mag_err, flux, flux_err"),
    "upper_limit": ("non_detections", "mjd, band, limiting_mag AS mag, limiting_flux AS flux"),
    "forced": ("forced_photometry", "mjd, band, flux, flux_err"),
}


class Point(BaseModel):
    mjd: float = Field(description="MJD (ZTF: start of exposure, UTC; Rubin: midpoint, TAI)")
    band: str | None
    kind: Kind = Field(description="detection, upper_limit (a non-detection) or forced (forced photometry)")
    mag: float | None = Field(description="AB magnitude; for an upper limit, the limiting magnitude")
    mag_err: float | None
    flux: float | None = Field(description="difference flux, nJy, signed; for an upper limit, the limit")
    flux_err: float | None


class BandCounts(BaseModel):
    band: str | None
    detection: int
    upper_limit: int
    forced: int


class LightCurve(BaseModel):
    survey: str
    object_id: str
    bands: list[BandCounts] = Field(description="the points of each band, by kind")
    points: list[Point] = Field(description="by time (then kind, then band)")
    truncated: bool = Field(
        description=f"whether a kind had more than {MAX_HISTORY_ROWS} points and was cut there (the "
        "earliest kept)"
    )


def _point(kind: Kind, row: dict[str, Any]) -> Point:
    if kind == "forced":
        row = {
            **row,
            "mag": flux_njy_to_mag(row["flux"]),
            "mag_err": flux_err_to_mag_err(row["flux"], row["flux_err"]),
        }
    return Point(
        mjd=row["mjd"],
        band=row["band"],
        kind=kind,
        mag=row.get("mag"),
        mag_err=row.get("mag_err"),
        flux=row.get("flux"),
        flux_err=row.get("flux_err"),
    )


def light_curve(store: TapStore, survey: str, object_id: str) -> LightCurve:
    """Every point of the object's three histories (an unknown object: no points)."""
    points: list[Point] = []
    truncated = False
    for kind in KINDS:
        table, columns = _SOURCES[kind]
        rows = read(
            store,
            f"SELECT {columns} FROM starling.{table} WHERE {object_where(survey, object_id)} ORDER BY mjd",
            MAX_HISTORY_ROWS,
        )
        truncated |= rows.more
        points += [_point(kind, row) for row in rows.rows]
    points.sort(key=lambda p: (p.mjd, KINDS.index(p.kind), p.band or ""))
    counted = Counter((p.band, p.kind) for p in points)
    bands = sorted({p.band for p in points}, key=lambda band: band or "")
    return LightCurve(
        survey=survey,
        object_id=object_id,
        bands=[BandCounts(band=band, **{kind: counted[band, kind] for kind in KINDS}) for band in bands],
        points=points,
        truncated=truncated,
    )


@router.get(
    "/{survey}/{object_id}/lightcurve",
    response_model=LightCurve,
    summary="An object's light curve",
    description="Its detections, upper limits (non-detections) and forced photometry, every point with "
    "its time, band, kind, magnitude and flux with their errors. A forced point's magnitude is derived "
    "from its flux (AB, 31.4 - 2.5 log10(flux/nJy)), null where the flux is not positive.",
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def get_light_curve(survey: SurveyPath, object_id: ObjectIdPath, store: Store) -> LightCurve:
    find_object(store, survey, object_id)
    return light_curve(store, survey, object_id)
