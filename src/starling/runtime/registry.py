"""Find components by name through the ``starling.components`` entry-point group.

A third-party package ships a component by declaring, in its own pyproject.toml::

    [project.entry-points."starling.components"]
    my-annotator = "my_package.module:MyAnnotator"

Only classes that subclass :class:`Component` are accepted; a dotted path typed into a config file
is never imported (see DESIGN.md: no classes loaded from unchecked dotted strings).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from starling.errors import ComponentNotFoundError, ConfigError
from starling.runtime.component import Component, ComponentKind

ENTRY_POINT_GROUP = "starling.components"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_components() -> dict[str, str]:
    """Every installed component: name -> ``module:Class``."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def component_class(name: str) -> type[Component[Any]]:
    entry = _entry_points().get(name)
    if entry is None:
        known = ", ".join(sorted(_entry_points())) or "none"
        raise ComponentNotFoundError(f"no component named {name!r} is installed (installed: {known})")
    loaded = entry.load()
    if not (isinstance(loaded, type) and issubclass(loaded, Component)):
        raise ComponentNotFoundError(f"entry point {name!r} ({entry.value}) is not a Starling component class")
    return loaded


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line per problem, each naming the field, e.g. ``threshold.max_mag: Input should be a number``."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(config)"
        lines.append(f"{where}.{location}: {error['msg']}")
    return "; ".join(lines)


def build_component(
    use: str, config: dict[str, Any], name: str | None = None, expected_kind: ComponentKind | None = None
) -> Component[Any]:
    """Validate ``config`` against the component's own model and build it."""
    cls = component_class(use)
    if expected_kind is not None and cls.kind != expected_kind:
        raise ConfigError(f"component {use!r} is a {cls.kind}, but it is used as a {expected_kind}")
    instance_name = name or use
    try:
        validated = cls.Config.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, instance_name)) from exc
    return cls(validated, instance_name)
