"""Users' watchlists and watchmaps as the controller holds them.

Each kind is kept in the config of one ingest-stage annotator (``watchlists`` or ``watchmaps``),
added to the stage when its first entry arrives. Every entry carries its owner: a user sees its own,
an operator all of them.
"""

from __future__ import annotations

from typing import Any

from starling.control.controller import Controller
from starling.control.state import Principal
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

    def replace(self, entries: list[dict[str, Any]]) -> int:
        """Put ``entries`` live (ConfigError if the annotator refuses them); the new pipeline version."""
        components = self.controller.components("ingest")
        current = self.component()
        updated = ComponentSpec(use=self.use, name=self.use, config={self.key: entries})
        if current is None:
            components = [*components, updated]
        else:
            components = [updated if c is current else c for c in components]
        return self.controller.set_annotators(components).version


def watchlists(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchlists", "lists")


def watchmaps(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchmaps", "maps")
