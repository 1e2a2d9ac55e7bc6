"""Users' filters through the controller: submit, list with counts, change, pause, delete, try.

A user filter is an ``adql`` component of the filter stage whose config carries its owner. A user
token sees and changes its own filters; an operator token all of them. ``POST /try-filter`` judges
the stored alerts with an expression before it goes live. A filter is checked when it
is submitted (a syntax error names the line and column, an unknown field the nearest known ones),
then goes live in every replica of the filter stage between two batches, without a restart. Where
its matches go (its outputs) is given to the distribute stage's ``deliver`` sink first, so no match
of a new filter is judged before its outputs are known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.components.sinks.deliver.outputs import Output
from starling.control.state import Principal
from starling.core.spec import ComponentSpec
from starling.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from starling.control.controller import Controller

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


def _refusal(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _checked(expression: str) -> JSONResponse | None:
    try:
        compile_filter(expression)
    except FilterSyntaxError as exc:
        return _refusal(422, [exc.problem()])
    return None


class UserFilters:
    """The controller's filter-stage components seen as users' filters."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def specs(self) -> list[ComponentSpec]:
        return self.controller.components("filter")

    @staticmethod
    def owner(spec: ComponentSpec) -> str:
        return str(spec.config.get("owner", "operator"))

    def visible(self, principal: Principal) -> list[ComponentSpec]:
        return [
            s
            for s in self.specs()
            if s.use == "adql" and (principal.role == "operator" or self.owner(s) == principal.user)
        ]

    def find(self, principal: Principal, name: str) -> ComponentSpec | None:
        return next((s for s in self.visible(principal) if s.instance_name == name), None)

    def counts(self) -> dict[str, dict[str, Any]]:
        """Per filter, summed over the replicas: seen, matched, held back; delivered and failed."""
        totals: dict[str, dict[str, Any]] = {}
        for worker in self.controller.backend.workers("filter"):
            status = worker.get("/status", timeout_s=2.0) or {}
            for name, counted in status.get("components", {}).items():
                entry = totals.setdefault(name, {"seen": 0, "matched": 0, "held_back_by_cap": 0})
                entry["seen"] += counted.get("in", 0)
                entry["matched"] += counted.get("out", 0)
                entry["held_back_by_cap"] += counted.get("held_back_by_cap", 0)
        for worker in self.controller.backend.workers("distribute"):
            status = worker.get("/status", timeout_s=2.0) or {}
            deliver = status.get("components", {}).get("deliver", {})
            for what in ("delivered", "failed", "waiting"):
                for name, count in deliver.get(what, {}).items():
                    entry = totals.setdefault(name, {"seen": 0, "matched": 0, "held_back_by_cap": 0})
                    entry[what] = entry.get(what, 0) + count
        return totals

    def view(self, spec: ComponentSpec, counts: dict[str, dict[str, Any]]) -> dict[str, Any]:
        config = spec.config
        counted = counts.get(spec.instance_name, {})
        return {
            "name": spec.instance_name,
            "owner": self.owner(spec),
            "expression": config.get("expression"),
            "description": config.get("description", ""),
            "paused": config.get("paused", False),
            "max_per_visit": config.get("max_per_visit"),
            "max_per_minute": config.get("max_per_minute"),
            "outputs": config.get("outputs", []),
            "counts": {
                "seen": counted.get("seen", 0),
                "matched": counted.get("matched", 0),
                "held_back_by_cap": counted.get("held_back_by_cap", 0),
                "delivered": counted.get("delivered", 0),
                "failed_deliveries": counted.get("failed", 0),
                "waiting_redelivery": counted.get("waiting", 0),
            },
        }

    def replace(self, components: list[ComponentSpec]) -> int:
        return self.controller.set_filters(components).version


def add_filter_routes(
    app: FastAPI, controller: Controller, anyone: Any, refusals: dict[int | str, Any]
) -> None:
    filters = UserFilters(controller)

    def guarded(change: Any) -> Any:
        try:
            return change()
        except ConfigError as exc:
            return _refusal(422, exc.problems)

    @app.get("/filters", responses=refusals, tags=["filters"])
    def list_filters(principal: Principal = anyone) -> list[dict[str, Any]]:
        """Your filters (an operator's token: everyone's), with their counts."""
        counts = filters.counts()
        return [filters.view(s, counts) for s in filters.visible(principal)]

    @app.post(
        "/filters",
        status_code=201,
        responses={**refusals, 409: {"description": "name taken"}},
        tags=["filters"],
    )
    def submit(body: NewFilter, principal: Principal = anyone) -> Any:
        """Check a filter and put it live for the alerts that arrive after (within seconds)."""
        refused = _checked(body.expression)
        if refused is not None:
            return refused
        if any(s.instance_name == body.name for s in filters.specs()):
            return _refusal(409, f"a filter named {body.name!r} exists; choose another name")
        config = body.model_dump(mode="json", exclude={"name"}, exclude_none=True)
        spec = ComponentSpec(use="adql", name=body.name, config={**config, "owner": principal.user})
        version = guarded(lambda: filters.replace([*filters.specs(), spec]))
        if isinstance(version, JSONResponse):
            return version
        return {"name": body.name, "version": version, "live": True}

    @app.get("/filters/{name}", responses=refusals, tags=["filters"])
    def get_filter(name: str, principal: Principal = anyone) -> Any:
        spec = filters.find(principal, name)
        if spec is None:
            return _refusal(404, f"you have no filter named {name!r}")
        return filters.view(spec, filters.counts())

    def _update(name: str, principal: Principal, changes: dict[str, Any]) -> Any:
        spec = filters.find(principal, name)
        if spec is None:
            return _refusal(404, f"you have no filter named {name!r}")
        if "expression" in changes:
            refused = _checked(changes["expression"])
            if refused is not None:
                return refused
        config = {**spec.config, **changes}
        updated = spec.model_copy(update={"config": config})
        components = [updated if s.instance_name == name else s for s in filters.specs()]
        version = guarded(lambda: filters.replace(components))
        if isinstance(version, JSONResponse):
            return version
        return {"name": name, "version": version}

    @app.patch("/filters/{name}", responses=refusals, tags=["filters"])
    def change(name: str, body: FilterChange, principal: Principal = anyone) -> Any:
        """Change some of a filter's settings; the new version judges the alerts that arrive after."""
        return _update(name, principal, body.model_dump(mode="json", exclude_unset=True))

    @app.post("/filters/{name}/pause", responses=refusals, tags=["filters"])
    def pause(name: str, principal: Principal = anyone) -> Any:
        return _update(name, principal, {"paused": True})

    @app.post("/filters/{name}/resume", responses=refusals, tags=["filters"])
    def resume(name: str, principal: Principal = anyone) -> Any:
        return _update(name, principal, {"paused": False})

    @app.delete("/filters/{name}", responses=refusals, tags=["filters"])
    def delete(name: str, principal: Principal = anyone) -> Any:
        if filters.find(principal, name) is None:
            return _refusal(404, f"you have no filter named {name!r}")
        version = guarded(lambda: filters.replace([s for s in filters.specs() if s.instance_name != name]))
        if isinstance(version, JSONResponse):
            return version
        return {"name": name, "version": version, "deleted": True}

    @app.post("/try-filter", responses=refusals, tags=["filters"])
    def try_on_history(body: TryFilter, principal: Principal = anyone) -> Any:
        """How many of the latest stored alerts the filter would have matched, and a sample."""
        refused = _checked(body.expression)
        if refused is not None:
            return refused
        try:
            return controller.try_filter(body.expression, body.limit, body.sample)
        except StoreError as exc:
            return _refusal(409, f"the store cannot be read: {exc}")
