"""Users' watchlists and watchmaps as the controller holds them.

Each kind is kept in the config of one ingest-stage annotator (``watchlists`` or ``watchmaps``),
added to the stage when its first entry arrives. Every entry carries its owner: a user sees its own,
an operator all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starling.control.controller import Controller
from starling.control.tokens import Principal
from starling.core.spec import ComponentSpec


class WatchEntries:
    """The entries (lists or maps) of one ingest annotator, seen per owner."""

    def __init__(self, controller: Controller, use: str, key: str) -> None:
        self.controller, self.use, self.key = controller, use, key

    @property
    def noun(self) -> str:
        """One entry's kind, for messages: ``list`` or ``map``."""
        return self.key[:-1]

    def component(self) -> ComponentSpec | None:
        return next((c for c in self.controller.components("ingest") if c.use == self.use), None)

    def entries(self) -> list[dict[str, Any]]:
        found = self.component()
        return list(found.config.get(self.key, [])) if found else []

    def visible(self, principal: Principal) -> list[dict[str, Any]]:
        return [e for e in self.entries() if principal.role == "operator" or e.get("owner") == principal.user]

    def find(self, principal: Principal, name: str) -> dict[str, Any] | None:
        return next((e for e in self.visible(principal) if e["name"] == name), None)

    def edit(self, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> int:
        """Change the entries in one step: ``edit`` gets the current ones and returns the new ones (or
        raises to refuse), under the controller's lock, so no concurrent change is lost (ConfigError if
        the annotator refuses them); the new pipeline version."""

        def on_components(components: list[ComponentSpec]) -> list[ComponentSpec]:
            current = next((c for c in components if c.use == self.use), None)
            entries = edit(list(current.config.get(self.key, [])) if current else [])
            updated = ComponentSpec(use=self.use, name=self.use, config={self.key: entries})
            if current is None:
                return [*components, updated]
            return [updated if c is current else c for c in components]

        return self.controller.edit("ingest", on_components).version


def watchlists(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchlists", "lists")


def watchmaps(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchmaps", "maps")
