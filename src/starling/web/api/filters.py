"""``/api/filters/{name}/matches``: the alerts a filter passed since a time, oldest first, a page at a
time (a client that follows a filter asks again with ``since`` at the last time it got).

``name`` is the filter as ``starling.filter_matches`` names it: a public (the operator's) filter by its
name, a user's filter as ``<user>.<name>``. Which rows a viewer sees is the database's decision
(``starling.store.access``, through TAP as the viewer), and the answer must not tell more than the rows
do: a filter of which the viewer sees no stored match at all is answered 404, the same answer, word for
word, whether it is another user's filter, no filter, or a filter that never matched. A filter the viewer
sees matches of, but none since ``since``, is answered with an empty list.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from starling.adql.literals import adql_number, adql_string
from starling.core.spec import COMPONENT_NAME_PATTERN
from starling.vo.tap_query import TapStore
from starling.web.api.common import (
    NOT_FOUND,
    TOKEN,
    Limit,
    Offset,
    Rows,
    Store,
    Viewer,
    not_found,
    read,
    user_of,
)

router = APIRouter(prefix="/filters", tags=["filters"])

# MJD 0 is 1858; 100,000 is 2132: every time a survey can send is inside, and no query meets a NaN.
Mjd = Annotated[
    float,
    Query(ge=0, le=100_000, allow_inf_nan=False, description="only matches of alerts at or after this MJD"),
]
FilterName = Annotated[
    str,
    Path(
        pattern=COMPONENT_NAME_PATTERN,
        description="the filter: a public filter's name, or <user>.<name> for a user's own",
    ),
]


class FilterMatch(BaseModel):
    survey: str
    alert_id: int
    object_id: str
    mjd: float = Field(description="time of the alert (MJD)")


class FilterMatchPage(BaseModel):
    filter: str
    since: float
    matches: list[FilterMatch] = Field(description="oldest first (ties in time by survey and alert id)")
    offset: int
    more: bool = Field(description="whether there are matches after these (ask with a larger offset)")


def _unknown(name: str) -> str:
    return f"no stored match of a filter {name!r} among your filters and the public ones"


def filter_page(
    store: TapStore, name: str, since: float, limit: int, offset: int, viewer: str | None
) -> Rows:
    """A page of the matches ``viewer`` may see of the filter ``name`` since ``since``; 404 when the
    viewer sees no match of it at all, whenever."""
    where = f"filter = {adql_string(name)}"
    page = read(
        store,
        f"SELECT TOP {limit + 1} survey, alert_id, object_id, mjd FROM starling.filter_matches "
        f"WHERE {where} AND mjd >= {adql_number(since)} "
        f"ORDER BY mjd, survey, alert_id OFFSET {adql_number(offset)}",
        limit,
        viewer,
    )
    if (
        not page.rows
        and not read(
            store, f"SELECT TOP 1 alert_id FROM starling.filter_matches WHERE {where}", 1, viewer
        ).rows
    ):
        raise not_found(_unknown(name))
    return page


@router.get(
    "/{name}/matches",
    response_model=FilterMatchPage,
    summary="A filter's matches since a time",
    description="The alerts the filter passed at or after `since` (MJD), oldest first, `limit` at a "
    "time from `offset`. A public filter for anyone; a user's filter (`<user>.<name>`) for that user's "
    "token only. A filter of which you may see no stored match (another user's, none of that name, or "
    "one that never matched) is a 404, the same for each.",
    responses={**NOT_FOUND, **TOKEN},
)
def get_filter_matches(
    name: FilterName, store: Store, who: Viewer, since: Mjd = 0.0, limit: Limit = 100, offset: Offset = 0
) -> FilterMatchPage:
    page = filter_page(store, name, since, limit, offset, user_of(who))
    return FilterMatchPage(
        filter=name,
        since=since,
        matches=[FilterMatch(**row) for row in page.rows],
        offset=offset,
        more=page.more,
    )
