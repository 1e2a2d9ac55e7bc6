"""``/api/objects/{survey}/{object_id}/annotations``: what the broker's annotators wrote about each of
an object's alerts (cross-matches, light-curve features, watchlists ...), alert by alert, newest first,
a page of alerts at a time (an alert no annotator wrote about is there, with none)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from starling.web.api.alerts import annotations_of
from starling.web.api.common import (
    NOT_FOUND,
    TOKEN,
    UNAVAILABLE,
    Limit,
    ObjectIdPath,
    Offset,
    Store,
    SurveyPath,
    Viewer,
    user_of,
)
from starling.web.api.objects import alert_page, find_object

router = APIRouter(prefix="/objects", tags=["objects"])


class AlertAnnotations(BaseModel):
    alert_id: int
    mjd: float
    annotations: dict[str, Any] = Field(description="annotator -> what it wrote (JSON)")


class AnnotationPage(BaseModel):
    survey: str
    object_id: str
    alerts: list[AlertAnnotations] = Field(description="the object's alerts, newest first")
    offset: int
    more: bool = Field(description="whether the object has alerts after these (ask with a larger offset)")


@router.get(
    "/{survey}/{object_id}/annotations",
    response_model=AnnotationPage,
    summary="The annotations of an object's alerts",
    description="Each of the object's alerts (newest first, `limit` at a time from `offset`) with its "
    "annotations: annotator -> payload, as the annotator wrote it (a user's own watchlist and watchmap "
    "hits as `<user>.watchlists` and `<user>.watchmaps`, to that user alone).",
    responses={**NOT_FOUND, **UNAVAILABLE, **TOKEN},
)
def get_annotations(
    survey: SurveyPath,
    object_id: ObjectIdPath,
    store: Store,
    who: Viewer,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AnnotationPage:
    find_object(store, survey, object_id)
    page = alert_page(store, survey, object_id, limit, offset)
    found = annotations_of(store, survey, [int(row["alert_id"]) for row in page.rows], user_of(who))
    return AnnotationPage(
        survey=survey,
        object_id=object_id,
        alerts=[
            AlertAnnotations(
                alert_id=row["alert_id"], mjd=row["mjd"], annotations=found[int(row["alert_id"])]
            )
            for row in page.rows
        ],
        offset=offset,
        more=page.more,
    )
