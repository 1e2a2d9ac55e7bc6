"""``/api/objects/{survey}/{object_id}/matches``: which filters an object's alerts passed, as far as the
viewer may know: the public (the operator's) filters, and with a token that user's own. The rule is the
database's (``starling.store.access``): the query reads ``starling.filter_matches`` through TAP as the
viewer, so no row of another user's filter ever reaches this service."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.vo.tap_query import TapStore
from starling.web.api.common import (
    MAX_HISTORY_ROWS,
    NOT_FOUND,
    TOKEN,
    ObjectIdPath,
    Store,
    SurveyPath,
    Viewer,
    read,
    user_of,
)
from starling.web.api.objects import find_object, object_where

router = APIRouter(prefix="/objects", tags=["objects"])


class MatchedAlert(BaseModel):
    alert_id: int
    mjd: float


class FilterHits(BaseModel):
    filter: str = Field(description="the filter's name: a public one, or <user>.<name> for a user's")
    alerts: list[MatchedAlert] = Field(description="the object's alerts it passed, newest first")


class ObjectMatches(BaseModel):
    survey: str
    object_id: str
    filters: list[FilterHits] = Field(description="by name")
    truncated: bool = Field(description=f"whether there were more than {MAX_HISTORY_ROWS} matches (cut)")


def object_matches(store: TapStore, survey: str, object_id: str, viewer: str | None) -> ObjectMatches:
    """The filters the object's alerts passed, of those ``viewer`` (None: anonymous) may see."""
    rows = read(
        store,
        f"SELECT filter, alert_id, mjd FROM starling.filter_matches WHERE {object_where(survey, object_id)} "
        "ORDER BY filter, mjd DESC, alert_id DESC",
        MAX_HISTORY_ROWS,
        viewer,
    )
    hits: dict[str, list[MatchedAlert]] = {}
    for row in rows.rows:
        hits.setdefault(str(row["filter"]), []).append(MatchedAlert(alert_id=row["alert_id"], mjd=row["mjd"]))
    return ObjectMatches(
        survey=survey,
        object_id=object_id,
        filters=[FilterHits(filter=name, alerts=alerts) for name, alerts in hits.items()],
        truncated=rows.more,
    )


@router.get(
    "/{survey}/{object_id}/matches",
    response_model=ObjectMatches,
    summary="The filters an object's alerts passed",
    description="Each filter that passed one of the object's alerts, with those alerts: the public "
    "filters, and with a bearer token the user's own (`<user>.<name>`); another user's never.",
    responses={**NOT_FOUND, **TOKEN},
)
def get_object_matches(
    survey: SurveyPath, object_id: ObjectIdPath, store: Store, who: Viewer
) -> ObjectMatches:
    find_object(store, survey, object_id)
    return object_matches(store, survey, object_id, user_of(who))
