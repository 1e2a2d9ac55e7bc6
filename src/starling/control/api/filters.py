"""Users' filters through the controller: submit, list with counts, change, pause, delete, try.

A user token sees and changes its own filters; an operator token all of them. ``POST /try-filter``
judges the stored alerts with an expression before it goes live. A filter is checked when it is
submitted (a syntax error names the line and column, an unknown field the nearest known ones), then
goes live in every replica of the filter stage between two batches, without a restart. Where its
matches go (its outputs) is given to the distribute stage's ``deliver`` sink first, so no match of a
new filter is judged before its outputs are known.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.components.outputs import Output
from starling.control.api.auth import ANYONE, Anyone
from starling.control.api.common import (
    AUTH_RESPONSES,
    REFUSED,
    IfMatch,
    check_if_match,
    config_refused,
    entity_tag,
    problem,
    refuse,
)
from starling.control.api.deps import Control
from starling.control.quotas import over_quota
from starling.control.tokens import Principal
from starling.control.trial import TrialsBusyError
from starling.control.user_filters import UserFilters
from starling.control.user_outputs import placed_outputs, topic_collision
from starling.control.user_watch import others_read
from starling.core.spec import ComponentSpec
from starling.core.stages import delivering_stage, filtering_stage
from starling.errors import StoreError

FILTER_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class NewFilter(BaseModel):
    name: str = Field(pattern=FILTER_NAME, description="unique among your filters")
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
    limit: int = Field(10_000, ge=1, le=20_000, description="how many of the latest stored alerts to judge")
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
    name: str = Field(description="the name its owner gave it")
    id: str = Field(description="the component it is in the filter stage (<owner>.<name> for a user's)")
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
    live: bool = Field(
        description="every replica of the filter stage (and of the distribute stage, for its outputs) "
        "applied the change within 15 s; false if one did not (it applies it when it can, or when it starts)"
    )


class FilterSubmitted(FilterChanged):
    pass


class FilterDeleted(FilterChanged):
    deleted: bool


class TryFilterResult(BaseModel):
    alerts_examined: int
    matched: int
    fraction: float
    newest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    oldest_mjd: float | None = Field(None, description="absent when the store holds no alert")
    sample: list[dict[str, Any]] = Field(description="some of the matched alerts, as stored")
    query: str | None = Field(
        None, description="the filter as a TAP query (ADQL) selecting its matches among those alerts"
    )
    sql: str | None = Field(None, description="the SQL that query ran as in the store")


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


def _reads_only_its_own(filters: UserFilters, who: Principal, expression: str) -> None:
    """422 if the expression reads another user's watchlist or watchmap (see ``user_watch``)."""
    if foreign := others_read(filters.controller, who, expression):
        refuse(
            422,
            [
                {
                    "loc": ["body", "expression"],
                    "msg": f"it reads {', '.join(foreign)}, which belongs to someone else: a filter reads "
                    "your own watchlists and watchmaps and the broker's",
                }
            ],
        )


def _found(filters: UserFilters, who: Principal, name: str) -> ComponentSpec:
    spec = filters.find(who, name)
    if spec is None:
        refuse(404, f"you have no filter named {name!r}")
    return spec


def _owned(specs: list[ComponentSpec], who: Principal, name: str) -> int:
    """The index of ``who``'s filter ``name`` among the stage's components (404 if there is none)."""
    wanted = UserFilters.component_name(who, name)
    mine = who.role == "operator"
    for index, spec in enumerate(specs):
        if (
            spec.use == "adql"
            and spec.instance_name == wanted
            and (mine or UserFilters.owner(spec) == who.user)
        ):
            return index
    refuse(404, f"you have no filter named {name!r}")


def _edited(
    filters: UserFilters, edit: Callable[[list[ComponentSpec]], list[ComponentSpec]]
) -> tuple[int, bool]:
    """The new version, and whether it is live in every replica that must apply it."""
    with config_refused():
        version = filters.edit(edit)
    controller = filters.controller
    spec = controller.desired.spec
    return version, controller.wait_live(version, *{delivering_stage(spec), filtering_stage(spec)})


def _placed(
    filters: UserFilters, who: Principal, name: str, outputs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The outputs with their topics decided (see ``user_outputs``); 422 naming any aimed elsewhere."""
    spec = filters.controller.desired.spec
    placed, problems = placed_outputs(spec, outputs, who.user, who.role == "operator", name)
    if problems:
        refuse(422, [{"loc": ["body", "outputs"], "msg": problem} for problem in problems])
    return placed


def _collides(filters: UserFilters, specs: list[ComponentSpec], component: str, outputs: Any) -> None:
    """409 if Kafka would refuse a topic of the outputs beside those in use (``topic_collision``):
    checked under the controller's lock, with the list the change is made to."""
    spec = filters.controller.desired.spec
    if (clash := topic_collision(spec, specs, component, outputs)) is not None:
        refuse(409, clash)


def _capped(filters: UserFilters, who: Principal, config: dict[str, Any]) -> dict[str, Any]:
    """A user's filter passes on at most the operator's quota of matches a minute (its own cap if lower)."""
    if who.role == "operator":
        return config
    quota = filters.controller.quotas.matches_per_minute
    asked = config.get("max_per_minute")
    return {**config, "max_per_minute": min(asked, quota) if asked is not None else quota}


def _update(
    filters: UserFilters, who: Principal, name: str, changes: dict[str, Any], if_match: str | None = None
) -> FilterChanged:
    if "max_per_minute" in changes:
        changes = _capped(filters, who, changes)
    if "expression" in changes:
        _check(changes["expression"])
    if "outputs" in changes:
        changes = {**changes, "outputs": _placed(filters, who, name, changes["outputs"])}

    def update(specs: list[ComponentSpec]) -> list[ComponentSpec]:
        index = _owned(specs, who, name)
        check_if_match(if_match, specs[index].config, "filter")
        if "expression" in changes:
            _reads_only_its_own(filters, who, changes["expression"])
        if "outputs" in changes:
            _collides(filters, specs, specs[index].instance_name, changes["outputs"])
        updated = specs[index].model_copy(update={"config": {**specs[index].config, **changes}})
        return [*specs[:index], updated, *specs[index + 1 :]]

    version, live = _edited(filters, update)
    return FilterChanged(name=name, version=version, live=live)


@router.get("/filters")
def list_filters(filters: Filters, who: Anyone) -> list[FilterView]:
    """Your filters (an operator's token: everyone's), with their counts."""
    counts = filters.counts()
    return [FilterView.model_validate(filters.view(s, counts)) for s in filters.visible(who)]


@router.post(
    "/filters", status_code=201, responses={**REFUSED, 409: problem("name taken, or its topic would collide")}
)
def submit(body: NewFilter, filters: Filters, who: Anyone) -> FilterSubmitted:
    """Check a filter and put it live for the alerts that arrive after (within seconds)."""
    _check(body.expression)
    config = body.model_dump(mode="json", exclude={"name"}, exclude_none=True)
    component = UserFilters.component_name(who, body.name)
    config["outputs"] = _placed(filters, who, body.name, config.get("outputs", []))
    config = _capped(filters, who, config)
    spec = ComponentSpec(use="adql", name=component, config={**config, "owner": who.user})

    def add(specs: list[ComponentSpec]) -> list[ComponentSpec]:
        if any(s.instance_name == component for s in specs):
            refuse(409, f"you have a filter named {body.name!r}; choose another name")
        _reads_only_its_own(filters, who, body.expression)
        _collides(filters, specs, component, config["outputs"])
        limit = filters.controller.quotas.filters_per_user
        mine = sum(1 for s in specs if s.use == "adql" and UserFilters.owner(s) == who.user)
        if who.role != "operator" and mine >= limit:
            refuse(403, over_quota("filters", limit))
        return [*specs, spec]

    version, live = _edited(filters, add)
    return FilterSubmitted(name=body.name, version=version, live=live)


@router.get("/filters/{name}", responses=NOT_YOURS)
def get_filter(name: str, filters: Filters, who: Anyone, response: Response) -> FilterView:
    """One of your filters, with an ``ETag``: send it back as ``If-Match`` with a change, and a change
    made meanwhile by someone else (another of your sessions, an operator) is not overwritten (412)."""
    spec = _found(filters, who, name)
    response.headers["ETag"] = entity_tag(spec.config)
    return FilterView.model_validate(filters.view(spec, filters.counts()))


CHANGE_RESPONSES = {**NOT_YOURS, 412: problem("it changed since you read it")}


@router.patch(
    "/filters/{name}", responses={**CHANGE_RESPONSES, 409: problem("a topic of its outputs would collide")}
)
def change(
    name: str, body: FilterChange, filters: Filters, who: Anyone, if_match: IfMatch = None
) -> FilterChanged:
    """Change some of a filter's settings; the new version judges the alerts that arrive after. A null
    cap removes the cap; a null anything else leaves it as it is."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    kept = {k: v for k, v in changes.items() if v is not None or k in ("max_per_visit", "max_per_minute")}
    return _update(filters, who, name, kept, if_match)


@router.post("/filters/{name}/pause", responses=CHANGE_RESPONSES)
def pause(name: str, filters: Filters, who: Anyone, if_match: IfMatch = None) -> FilterChanged:
    return _update(filters, who, name, {"paused": True}, if_match)


@router.post("/filters/{name}/resume", responses=CHANGE_RESPONSES)
def resume(name: str, filters: Filters, who: Anyone, if_match: IfMatch = None) -> FilterChanged:
    """Resume a paused filter: paused by its owner, or by the filter stage after repeated failures."""
    return _update(filters, who, name, {"paused": False, "resumed_at": time.time()}, if_match)


@router.delete("/filters/{name}", responses=CHANGE_RESPONSES)
def delete(name: str, filters: Filters, who: Anyone, if_match: IfMatch = None) -> FilterDeleted:
    def remove(specs: list[ComponentSpec]) -> list[ComponentSpec]:
        index = _owned(specs, who, name)
        check_if_match(if_match, specs[index].config, "filter")
        return [*specs[:index], *specs[index + 1 :]]

    version, live = _edited(filters, remove)
    return FilterDeleted(name=name, version=version, live=live, deleted=True)


@router.post(
    "/try-filter",
    responses={
        **REFUSED,
        409: problem("the store cannot be read"),
        429: problem("other trials are running"),
        503: problem("the trial took too long"),
    },
    response_model_exclude_unset=True,
)
def try_on_history(body: TryFilter, controller: Control) -> TryFilterResult:
    """How many of the latest stored alerts the filter would have matched, and a sample. Trials run
    one at a time on their own thread, a few waiting; past that, 429."""
    _check(body.expression)
    try:
        return TryFilterResult.model_validate(controller.try_filter(body.expression, body.limit, body.sample))
    except StoreError as exc:
        refuse(409, f"the store cannot be read: {exc}")
    except TrialsBusyError as exc:
        refuse(429, str(exc))
    except TimeoutError:
        refuse(503, f"the trial took longer than {controller.trials.timeout_s:.0f} s; try a smaller limit")
