"""``/api/alerts/{survey}/{alert_id}/explain``: why a filter did or did not pass an alert, the value of
each part of its condition on that alert (``starling.adql.explain``), from one TAP query over
``starling.alert_fields``, the view that holds every stored alert as a filter sees it.

A condition is given as ``expression`` (anyone may explain a condition they type), or as ``filter``, the
name of one of the viewer's own filters, whose expression the controller keeps: that needs the viewer's
token, and it is asked of the controller with that token, so it shows the viewer what the controller
would (a user's own filters; an operator's token: any filter by its id). The operator's public filters
are not shown to users by name: the controller does not show their expressions to users either.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from starling.adql.explain import Explanation, Kind, Part, explain
from starling.adql.parse import FilterSyntaxError
from starling.control.client import ControllerClient
from starling.core.spec import COMPONENT_NAME_PATTERN
from starling.errors import ControllerRefusedError, ControllerUnreachableError
from starling.vo.tap_query import TapQueryError, TapStore
from starling.web.api.alerts import alert_where
from starling.web.api.common import (
    NOT_FOUND,
    TOKEN,
    AlertIdPath,
    Store,
    SurveyPath,
    Viewer,
    one,
    problem,
    read,
    user_of,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/alerts", tags=["alerts"])

MAX_EXPRESSION = 20_000  # as the controller holds a filter's expression

Value = bool | int | float | str | None
ExpressionQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_EXPRESSION,
        description="the condition to explain, in the filter language (ADQL), e.g. `mag < 19 AND band = 'r'`",
    ),
]
FilterQuery = Annotated[
    str | None,
    Query(
        alias="filter",
        pattern=COMPONENT_NAME_PATTERN,
        description="instead of `expression`: one of your filters by its name (needs your token)",
    ),
]


class ExplainedPart(BaseModel):
    text: str = Field(description="the part as written in the expression")
    kind: Kind
    value: Value = Field(
        description="a condition's: true, false, or null when it is unknown (SQL's three-valued logic, "
        "as the stream filter judges it: a comparison with a null field is unknown); a value's: the "
        "number or string it is on the alert (a non-finite number as the string NaN, Infinity, -Infinity)"
    )
    children: list[ExplainedPart] = Field(description="the parts under it, in the order written")


class AlertExplanation(BaseModel):
    survey: str
    alert_id: int
    filter: str | None = Field(description="the filter's name when it was asked by name")
    expression: str
    verdict: bool | None = Field(
        description="whether the filter passes the alert: true, false, or null (unknown, which the "
        "filter does not pass)"
    )
    parts: ExplainedPart = Field(description="the whole condition, with its parts under it")
    fields: dict[str, Value] = Field(description="each field the condition reads (as the view's column)")
    query: str = Field(description="the TAP query (ADQL) that gave these values")


def _plain(value: Any) -> Value:
    """A value read from the store as JSON can hold it."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _answered(part: Part, values: Iterator[Any]) -> ExplainedPart:
    """The part with its value, and its children with theirs (the values in the query's order)."""
    value = next(values)
    if part.kind == "condition":
        shown: Value = None if value is None else bool(value)
    else:
        shown = _plain(value)
    children = [_answered(child, values) for child in part.children]
    return ExplainedPart(text=part.text, kind=part.kind, value=shown, children=children)


def filter_expression(controller_url: str | None, token: str | None, name: str) -> str:
    """The expression of the filter ``name`` the controller shows ``token``: 404 without a controller or
    such a filter, 401 without a token, 503 when the controller cannot be asked."""
    if controller_url is None:
        raise HTTPException(
            404, "this service has no controller, which keeps the filters: send the condition as ?expression="
        )
    if not token:
        raise HTTPException(
            401, "a filter is explained by name with its owner's token; without one, send it as ?expression="
        )
    try:
        found = ControllerClient(controller_url, token, timeout_s=10.0).filter(name)
    except ControllerRefusedError as exc:
        if exc.status == 404:
            raise HTTPException(404, f"you have no filter named {name!r}") from None
        if exc.status in (401, 403):
            raise HTTPException(401, f"the controller refused your token ({exc.detail})") from None
        raise HTTPException(503, f"the controller cannot be asked now; try again ({exc.detail})") from None
    except ControllerUnreachableError as exc:
        raise HTTPException(503, f"the controller cannot be asked now; try again ({exc})") from None
    expression = found.get("expression")
    if not isinstance(expression, str):
        raise HTTPException(404, f"the filter {name!r} has no condition to explain")
    return expression


def _condition(request: Request, expression: str | None, name: str | None) -> str:
    if expression is not None and name is None:
        return expression
    if expression is not None or name is None:
        raise HTTPException(422, "give the condition as ?expression=, or one of your filters as ?filter=")
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
    return filter_expression(request.app.state.identities.controller_url, token, name)


def _explained(expression: str, name: str | None) -> Explanation:
    """The condition cut into parts; 422 with the fault's line and column (as a live filter has it)."""
    try:
        return explain(expression)
    except FilterSyntaxError as exc:
        where = ["query", "filter" if name is not None else "expression"]
        raise HTTPException(422, [{**exc.problem(), "loc": where}]) from None


def _row(store: TapStore, query: str, survey: str, alert_id: int, viewer: str | None) -> dict[str, Any]:
    """The alert's row of values; 404 when the store has no such alert."""
    try:
        rows = read(store, query, 1, viewer)
    except TapQueryError as exc:
        # The query is the user's condition: what the database refuses of it (a NUL in a string, a
        # number past a double, on PostgreSQL) is a refusal of that condition here, not this API's fault.
        log.warning(f"explain: the store refused {query!r}: {exc}")
        problem = {"loc": ["query", "expression"], "msg": f"the store cannot judge this condition: {exc}"}
        raise HTTPException(422, [problem]) from None
    return one(rows, lambda: f"no alert {survey} {alert_id} in the store")


@router.get(
    "/{survey}/{alert_id}/explain",
    response_model=AlertExplanation,
    summary="Why a filter did (not) pass an alert",
    description="The value on this alert of every part of a filter's condition: each condition (true, "
    "false, or null: unknown) and each value that reads a field, as a tree, with the fields it reads. "
    "The condition is `expression`, or `filter`: one of your filters by name (with your token). Each "
    "part's value is what the stream filter judges that part alone to be.",
    responses={
        **NOT_FOUND,
        **TOKEN,
        422: problem(
            "the condition is not a filter (the message says where: line and column), or one the store "
            "cannot judge"
        ),
    },
)
def explain_alert(
    survey: SurveyPath,
    alert_id: AlertIdPath,
    store: Store,
    who: Viewer,
    request: Request,
    expression: ExpressionQuery = None,
    filter_name: FilterQuery = None,
) -> AlertExplanation:
    condition = _condition(request, expression, filter_name)
    explanation = _explained(condition, filter_name)
    query = explanation.query(alert_where(survey, alert_id))
    row = _row(store, query, survey, alert_id, user_of(who))
    parts = explanation.parts()
    tree = _answered(explanation.root, iter(row[f"p{i}"] for i in range(len(parts))))
    fields = {name: _plain(row[f"f{i}"]) for i, name in enumerate(explanation.fields)}
    return AlertExplanation(
        survey=survey,
        alert_id=alert_id,
        filter=filter_name,
        expression=condition,
        verdict=tree.value if isinstance(tree.value, bool) else None,
        parts=tree,
        fields=fields,
        query=query,
    )
