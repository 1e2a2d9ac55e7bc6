"""Users' watchlists and watchmaps as the controller holds them.

Each kind is kept in the config of one ingest-stage annotator (``watchlists`` or ``watchmaps``),
added to the stage when its first entry arrives. Every entry carries its owner: a user sees its own,
an operator all of them. An entry's bulk (a list's targets, a map's region) is kept by the controller as a
stored body (``starling.core.bodies``): the pipeline holds a reference to it, so a list of 100,000
targets weighs a few dozen bytes in the description every worker and the Kubernetes Secret receive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starling.adql.language import compile_filter
from starling.control.controller import Controller
from starling.control.tokens import Principal
from starling.core.bodies import is_reference, resolve
from starling.core.spec import ComponentSpec
from starling.core.stages import annotating_stage


class WatchEntries:
    """The entries (lists or maps) of one ingest annotator, seen per owner."""

    def __init__(self, controller: Controller, use: str, key: str, bulk: str) -> None:
        self.controller, self.use, self.key = controller, use, key
        self.bulk = bulk  # the field of an entry kept as a stored body

    def whole(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` with its bulk read back from the stored body."""
        return {**entry, self.bulk: resolve(entry[self.bulk], self.controller.body)}

    @property
    def noun(self) -> str:
        """One entry's kind, for messages: ``list`` or ``map``."""
        return self.key[:-1]

    def component(self) -> ComponentSpec | None:
        stage = annotating_stage(self.controller.desired.spec)
        return next((c for c in self.controller.components(stage) if c.use == self.use), None)

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
            entries = [
                self._stored(e) for e in edit(list(current.config.get(self.key, [])) if current else [])
            ]
            updated = ComponentSpec(use=self.use, name=self.use, config={self.key: entries})
            if current is None:
                return [*components, updated]
            return [updated if c is current else c for c in components]

        return self.controller.edit(annotating_stage(self.controller.desired.spec), on_components).version

    def _stored(self, entry: dict[str, Any]) -> dict[str, Any]:
        if is_reference(entry[self.bulk]):
            return entry
        return {**entry, self.bulk: self.controller.keep_body(entry[self.bulk])}


def watchlists(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchlists", "lists", "targets")


def watchmaps(controller: Controller) -> WatchEntries:
    return WatchEntries(controller, "watchmaps", "maps", "moc")


# Which lists and maps users' filters may read. In the stream every alert carries every list's marks, so
# a filter could read another user's hits by naming its list: a user's filter may name its own lists and
# maps and the broker's only. A name a user's filter reads and nobody holds yet is kept for that user (no
# other user may then take it), so that no later list of another's can be read either. Both checks run
# under the controller's lock, with the lists and filters as the change finds them.

WATCH_ANNOTATORS = ("watchlists", "watchmaps")


def watch_references(expression: str) -> set[tuple[str, str]]:
    """(annotator, name) of each list or map a (checked) filter expression reads: ``watchlists.<name>.…``."""
    found = set()
    for field in compile_filter(expression).fields:
        source, _, rest = field.partition(".")
        name = rest.partition(".")[0].lower()  # the filter language reads names without regard to case
        if source.lower() in WATCH_ANNOTATORS and name:
            found.add((source.lower(), name))
    return found


def _owner_of(controller: Controller, annotator: str, name: str) -> str | None:
    """Who holds the list or map ``name`` (a filter names fields without regard to case)."""
    entries = watchlists(controller) if annotator == "watchlists" else watchmaps(controller)
    wanted = name.lower()
    return next(
        (str(e.get("owner", "operator")) for e in entries.entries() if e["name"].lower() == wanted), None
    )


def others_read(controller: Controller, who: Principal, expression: str) -> list[str]:
    """The lists and maps of other users ``who``'s filter ``expression`` would read (an operator's: none)."""
    if who.role == "operator":
        return []
    return sorted(
        f"{annotator}.{name}"
        for annotator, name in watch_references(expression)
        if _owner_of(controller, annotator, name) not in (None, "operator", who.user)
    )


def read_by_others(controller: Controller, who: Principal, annotator: str, name: str) -> bool:
    """Whether another user's filter reads the list or map ``name`` (an operator may take any name)."""
    if who.role == "operator":
        return False
    for spec in controller.desired.spec.filters:
        owner = str(spec.config.get("owner", "operator"))
        expression = str(spec.config.get("expression", ""))
        if spec.use != "adql" or owner in ("operator", who.user) or name.lower() not in expression.lower():
            continue
        if (annotator, name.lower()) in watch_references(expression):
            return True
    return False
