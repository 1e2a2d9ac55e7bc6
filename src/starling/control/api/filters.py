"""Users' filters through the controller: submit, list with counts, change, pause, delete, try.

A user token sees and changes its own filters; an operator token all of them. ``POST /try-filter``
judges the stored alerts with an expression before it goes live. A filter is checked when it is
submitted (a syntax error names the line and column, an unknown field the nearest known ones), then
goes live in every replica of the filter stage between two batches, without a restart. Where its
matches go (its outputs) is given to the distribute stage's ``deliver`` sink first, so no match of a
new filter is judged before its outputs are known.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.components.outputs import Output
from starling.control.api.auth import ANYONE, Anyone
from starling.control.api.common import AUTH_RESPONSES, REFUSED, config_refused, problem, refuse
from starling.control.api.deps import Control
from starling.control.state import Principal
from starling.control.user_filters import UserFilters
from starling.core.spec import ComponentSpec
from starling.errors import StoreError

FILTER_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class NewFilter(BaseModel):
    name: str = Field(pattern=FILTER_NAME, description="unique among the pipeline's filters")
    expression: str = Field(min_length=1, max_length=20_000, description="an ADQL condition")
    description: str = Field("", max_length=2000)
    outputs: list[Output] = Field(default_factory=list)
    max_per_visit: int | None = Field(None, ge=1)
    max_per_minute: int | None = Field(None, ge=1)


class FilterChange(BaseModel):
    expression: str | None = Field(None, min_length=1, max_length=20_000)
    description: str | None = Field(None, max_length=2000)
    outputs: list[Output] | None = None
    max_per_visit: int | None = Field(None, ge=1)
    max_per_minute: int | None = Field(None, ge=1)
    paused: bool | None = None


class TryFilter(BaseModel):
    expression: str = Field(min_length=1, max_length=20_000)
    limit: int = Field(10_000, ge=1, le=200_000, description="how many of the latest stored alerts to judge")
    sample: int = Field(20, ge=0, le=500, description="how many of the matches to show")


class FilterCounts(BaseModel):
    """Summed over the replicas since they started."""

    seen: int
    matched: int
    held_back_by_cap: int
    delivered: int
    failed_deliveries: int
    waiting_redelivery: int


class FilterView(BaseModel):
    name: str
    owner: str
    expression: str | None
    description: str
    paused: bool
    max_per_visit: int | None
    max_per_minute: int | None
    outputs: list[Output] = Field(description="where its matches go")
    counts: FilterCounts


class FilterChanged(BaseModel):
    name: str
    version: int = Field(description="the desired pipeline's version that carries the change")


class FilterSubmitted(FilterChanged):
    live: bool


class FilterDeleted(FilterChanged):
    deleted: bool


class TryFilterResult(BaseModel):
    alerts_examined: int
    matched: int
    fraction: float
    newest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    oldest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    sample: list[dict[str, Any]] = Field(description="some of the matched alerts, as stored")


def user_filters(controller: Control) -> UserFilters:
    return UserFilters(controller)


Filters = Annotated[UserFilters, Depends(user_filters)]
NOT_YOURS = {404: problem("you have no filter of that name"), **REFUSED}

# Every route needs a token; those that act on "your" filters take its principal (checked once).
router = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["filters"])


def _check(expression: str) -> None:
    """422 naming where the expression is wrong, before anything changes."""
    try:
        compile_filter(expression)
    except FilterSyntaxError as exc:
        refuse(422, [exc.problem()])


def _found(filters: UserFilters, who: Principal, name: str) -> ComponentSpec:
    spec = filters.find(who, name)
    if spec is None:
        refuse(404, f"you have no filter named {name!r}")
    return spec


def _replaced(filters: UserFilters, components: list[ComponentSpec]) -> int:
    with config_refused():
        return filters.replace(components)


def _update(filters: UserFilters, who: Principal, name: str, changes: dict[str, Any]) -> FilterChanged:
    spec = _found(filters, who, name)
    if "expression" in changes:
        _check(changes["expression"])
    updated = spec.model_copy(update={"config": {**spec.config, **changes}})
    version = _replaced(filters, [updated if s.instance_name == name else s for s in filters.specs()])
    return FilterChanged(name=name, version=version)


@router.get("/filters")
def list_filters(filters: Filters, who: Anyone) -> list[FilterView]:
    """Your filters (an operator's token: everyone's), with their counts."""
    counts = filters.counts()
    return [FilterView.model_validate(filters.view(s, counts)) for s in filters.visible(who)]


@router.post("/filters", status_code=201, responses={**REFUSED, 409: problem("name taken")})
def submit(body: NewFilter, filters: Filters, who: Anyone) -> FilterSubmitted:
    """Check a filter and put it live for the alerts that arrive after (within seconds)."""
    _check(body.expression)
    if any(s.instance_name == body.name for s in filters.specs()):
        refuse(409, f"a filter named {body.name!r} exists; choose another name")
    config = body.model_dump(mode="json", exclude={"name"}, exclude_none=True)
    spec = ComponentSpec(use="adql", name=body.name, config={**config, "owner": who.user})
    version = _replaced(filters, [*filters.specs(), spec])
    return FilterSubmitted(name=body.name, version=version, live=True)


@router.get("/filters/{name}", responses=NOT_YOURS)
def get_filter(name: str, filters: Filters, who: Anyone) -> FilterView:
    return FilterView.model_validate(filters.view(_found(filters, who, name), filters.counts()))


@router.patch("/filters/{name}", responses=NOT_YOURS)
def change(name: str, body: FilterChange, filters: Filters, who: Anyone) -> FilterChanged:
    """Change some of a filter's settings; the new version judges the alerts that arrive after."""
    return _update(filters, who, name, body.model_dump(mode="json", exclude_unset=True))


@router.post("/filters/{name}/pause", responses=NOT_YOURS)
def pause(name: str, filters: Filters, who: Anyone) -> FilterChanged:
    return _update(filters, who, name, {"paused": True})


@router.post("/filters/{name}/resume", responses=NOT_YOURS)
def resume(name: str, filters: Filters, who: Anyone) -> FilterChanged:
    return _update(filters, who, name, {"paused": False})


@router.delete("/filters/{name}", responses=NOT_YOURS)
def delete(name: str, filters: Filters, who: Anyone) -> FilterDeleted:
    _found(filters, who, name)
    version = _replaced(filters, [s for s in filters.specs() if s.instance_name != name])
    return FilterDeleted(name=name, version=version, deleted=True)


@router.post(
    "/try-filter",
    responses={**REFUSED, 409: problem("the store cannot be read")},
    response_model_exclude_unset=True,
)
def try_on_history(body: TryFilter, controller: Control) -> TryFilterResult:
    """How many of the latest stored alerts the filter would have matched, and a sample."""
    _check(body.expression)
    try:
        return TryFilterResult.model_validate(controller.try_filter(body.expression, body.limit, body.sample))
    except StoreError as exc:
        refuse(409, f"the store cannot be read: {exc}")
