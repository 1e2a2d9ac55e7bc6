"""Find components by name through the ``starling.components`` entry-point group.

A third-party package ships a component by declaring, in its own pyproject.toml::

    [project.entry-points."starling.components"]
    my-annotator = "my_package.module:MyAnnotator"

Only classes that subclass :class:`Component` are accepted; a dotted path typed into a config file
is never imported (see DESIGN.md: no classes loaded from unchecked dotted strings).
:func:`register_component` adds a class in-process, for a notebook or a plugin's own tests.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from starling.core.component import Component, ComponentKind
from starling.errors import ComponentNotFoundError, ConfigError

ENTRY_POINT_GROUP = "starling.components"


_registered: dict[str, type[Component[Any]]] = {}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register_component(name: str, cls: type[Component[Any]]) -> None:
    """Make ``cls`` available under ``name`` in this process (it wins over an entry point)."""
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise TypeError(f"{cls!r} is not a Starling component class")
    _registered[name] = cls


def unregister_component(name: str) -> None:
    _registered.pop(name, None)


def available_components() -> dict[str, str]:
    """Every available component: name -> ``module:Class``."""
    found = {name: ep.value for name, ep in _entry_points().items()}
    found.update({name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in _registered.items()})
    return dict(sorted(found.items()))


def component_class(name: str) -> type[Component[Any]]:
    if name in _registered:
        return _registered[name]
    entry = _entry_points().get(name)
    if entry is None:
        known = ", ".join(available_components()) or "none"
        raise ComponentNotFoundError(f"no component named {name!r} is installed (installed: {known})")
    loaded = entry.load()
    if not (isinstance(loaded, type) and issubclass(loaded, Component)):
        raise ComponentNotFoundError(
            f"entry point {name!r} ({entry.value}) is not a Starling component class"
        )
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
        problems: list[dict[str, object]] = [
            {"loc": [instance_name, *error["loc"]], "msg": error["msg"]} for error in exc.errors()
        ]
        raise ConfigError(format_validation_error(exc, instance_name), problems) from exc
    return cls(validated, instance_name)
