"""Users' filters as the controller holds them: ``adql`` components of the filter stage.

A filter's config carries its owner. A user sees its own filters, an operator all of them. Names are
each owner's own: a user's filter ``bright`` is the component ``<user>.bright`` (a user's name holds no
dot), so two users may both have a ``bright`` and neither learns of the other's; an operator's filter
is named as given, and an operator names a user's filter by its component name. Counts are
summed over the replicas as they report them: seen, matched and held back by the filter stage;
delivered, failed and waiting by the distribute stage's ``deliver`` sink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starling.control.controller import Controller
from starling.control.tokens import Principal
from starling.core.secrets import redact_secrets
from starling.core.spec import ComponentSpec
from starling.core.stages import delivering_stage, filtering_stage
from starling.store.access import user_filter_name


class UserFilters:
    """The controller's filter-stage components seen as users' filters."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def specs(self) -> list[ComponentSpec]:
        return self.controller.components(filtering_stage(self.controller.desired.spec))

    @staticmethod
    def owner(spec: ComponentSpec) -> str:
        return str(spec.config.get("owner", "operator"))

    def visible(self, principal: Principal) -> list[ComponentSpec]:
        return [
            s
            for s in self.specs()
            if s.use == "adql" and (principal.role == "operator" or self.owner(s) == principal.user)
        ]

    @staticmethod
    def component_name(principal: Principal, name: str) -> str:
        """The component that ``principal``'s filter ``name`` is (an operator's: ``name`` itself)."""
        return name if principal.role == "operator" else user_filter_name(principal.user, name)

    @classmethod
    def shown_name(cls, spec: ComponentSpec) -> str:
        """The name its owner gave it."""
        owner = cls.owner(spec)
        return spec.instance_name.removeprefix(f"{owner}.") if owner != "operator" else spec.instance_name

    def find(self, principal: Principal, name: str) -> ComponentSpec | None:
        wanted = self.component_name(principal, name)
        return next((s for s in self.visible(principal) if s.instance_name == wanted), None)

    def counts(self) -> dict[str, dict[str, Any]]:
        """Per filter, summed over the replicas: seen, matched, held back; delivered and failed."""
        totals: dict[str, dict[str, Any]] = {}
        for worker in self.controller.backend.workers(filtering_stage(self.controller.desired.spec)):
            status = worker.get("/status", timeout_s=2.0) or {}
            for name, counted in status.get("components", {}).items():
                entry = totals.setdefault(name, {"seen": 0, "matched": 0, "held_back_by_cap": 0})
                entry["seen"] += counted.get("in", 0)
                entry["matched"] += counted.get("out", 0)
                entry["held_back_by_cap"] += counted.get("held_back_by_cap", 0)
        for worker in self.controller.backend.workers(delivering_stage(self.controller.desired.spec)):
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
            "name": self.shown_name(spec),
            "id": spec.instance_name,
            "owner": self.owner(spec),
            "expression": config.get("expression"),
            "description": config.get("description", ""),
            "paused": config.get("paused", False),
            "max_per_visit": config.get("max_per_visit"),
            "max_per_minute": config.get("max_per_minute"),
            "outputs": redact_secrets(config.get("outputs", [])),
            "counts": {
                "seen": counted.get("seen", 0),
                "matched": counted.get("matched", 0),
                "held_back_by_cap": counted.get("held_back_by_cap", 0),
                "delivered": counted.get("delivered", 0),
                "failed_deliveries": counted.get("failed", 0),
                "waiting_redelivery": counted.get("waiting", 0),
            },
        }

    def edit(self, edit: Callable[[list[ComponentSpec]], list[ComponentSpec]]) -> int:
        """Change the filter stage's components in one step (see ``Controller.edit``); the new version."""
        return self.controller.edit(filtering_stage(self.controller.desired.spec), edit).version
