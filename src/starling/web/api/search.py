"""``/api/search/cone``: the objects within a radius of a position, nearest first, with their distance.

The query is ADQL's cone, ``CONTAINS(POINT, CIRCLE) = 1`` with ``DISTANCE``, run by TAP: the same SQL
TAP makes of a cone, which reads the position indexes (q3c on PostgreSQL; on SQLite the declination
index, then the exact test).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from starling.adql.literals import adql_number
from starling.web.api.common import UNAVAILABLE, Limit, Store, read

router = APIRouter(prefix="/search", tags=["search"])

MAX_RADIUS_ARCSEC = 3600.0
# A milliarcsecond, far below any survey's astrometry; q3c fails on radii near the smallest doubles.
MIN_RADIUS_ARCSEC = 0.001

Ra = Annotated[float, Query(ge=0, lt=360, allow_inf_nan=False, description="centre: right ascension, deg")]
Dec = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="centre: declination, deg")]
Radius = Annotated[
    float,
    Query(
        ge=MIN_RADIUS_ARCSEC,
        le=MAX_RADIUS_ARCSEC,
        allow_inf_nan=False,
        description=f"radius in arcseconds, from {MIN_RADIUS_ARCSEC:g} to {MAX_RADIUS_ARCSEC:g} (a degree)",
    ),
]


class ConeObject(BaseModel):
    survey: str
    object_id: str
    ra: float = Field(description="degrees, ICRS")
    dec: float = Field(description="degrees, ICRS")
    distance_arcsec: float = Field(description="great-circle distance from the centre")
    last_mjd: float = Field(description="time of its latest alert (MJD)")
    last_band: str | None
    last_mag: float | None
    n_detections: int


class ConeResult(BaseModel):
    ra: float
    dec: float
    radius_arcsec: float
    objects: list[ConeObject] = Field(description="nearest first")
    more: bool = Field(description="whether the cone holds more objects than `limit` (the nearest kept)")


def cone_query(ra: float, dec: float, radius_arcsec: float, limit: int) -> str:
    """The ADQL of a cone: the objects within ``radius_arcsec`` of (ra, dec), nearest first."""
    centre = f"POINT('ICRS', {adql_number(ra)}, {adql_number(dec)})"
    circle = f"CIRCLE('ICRS', {adql_number(ra)}, {adql_number(dec)}, {adql_number(radius_arcsec / 3600.0)})"
    return (
        f"SELECT TOP {limit + 1} survey, object_id, ra, dec, last_mjd, last_band, last_mag, n_detections, "
        f"DISTANCE(POINT('ICRS', ra, dec), {centre}) AS distance_deg FROM starling.objects "
        f"WHERE CONTAINS(POINT('ICRS', ra, dec), {circle}) = 1 ORDER BY distance_deg, survey, object_id"
    )


@router.get(
    "/cone",
    response_model=ConeResult,
    summary="Objects in a cone",
    description="The objects whose position is within `radius_arcsec` of (`ra`, `dec`) (ICRS, degrees), "
    "nearest first, `limit` at most, each with its distance.",
    responses=UNAVAILABLE,
)
def cone(ra: Ra, dec: Dec, radius_arcsec: Radius, store: Store, limit: Limit = 100) -> ConeResult:
    found = read(store, cone_query(ra, dec, radius_arcsec, limit), limit)
    objects = [
        ConeObject(
            **{key: value for key, value in row.items() if key != "distance_deg"},
            distance_arcsec=float(row["distance_deg"]) * 3600.0,
        )
        for row in found.rows
    ]
    return ConeResult(ra=ra, dec=dec, radius_arcsec=radius_arcsec, objects=objects, more=found.more)
