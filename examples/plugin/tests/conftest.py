"""The plugin's components, found by name in its tests even before the package is installed."""

from __future__ import annotations

from starling_example_plugins.galactic import Galactic
from starling_example_plugins.rising import RisingFilter

from starling.core.registry import register_component

register_component("example-galactic", Galactic)
register_component("example-rising", RisingFilter)
