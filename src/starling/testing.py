"""Test helpers for people who write Starling plugins: run a component in a real pipeline, no Kafka.

Bytewax ships its testing source and sink inside the library; so does Starling. A plugin's own tests
run its component in the embedded runtime (the same code that runs in production, in one process),
fed with real survey alerts or a synthetic night, and read back what reached the end::

    from starling.core.spec import ComponentSpec
    from starling.testing import run_components, synthetic_messages

    result = run_components([ComponentSpec(use="my-annotator")], synthetic_messages(500))
    assert all("my-annotator" in alert.annotations for alert in result.alerts)
    assert result.dead_letters == {}

- :func:`synthetic_messages` and :func:`sample_messages` (the real alerts of a samples folder, e.g.
  Starling's ``../shared/data`` or ``$STARLING_SAMPLES``) give messages in the surveys' wire formats;
- :class:`MessagesSource` (``testing-messages``) replays messages held in this process;
- :class:`CollectingSink` (``testing-collect``) keeps every alert and every filter's matches that
  reached it, in this process;
- :func:`run_components` builds the pipeline around the components under test, runs it and returns
  what the sink collected with the run's dead letters.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from starling.alert.model import Alert
from starling.assembly import route_deliveries
from starling.components.sources.files import iter_messages
from starling.core.component import Batch, ComponentConfig, RawMessage, Sink, Source
from starling.core.embedded import EmbeddedPipeline
from starling.core.registry import component_class, register_component, unregister_component
from starling.core.spec import ComponentSpec, PipelineSpec, default_stages
from starling.errors import ConfigError
from starling.synthetic.generator import SyntheticConfig, SyntheticNight

__all__ = [
    "Collected",
    "CollectingSink",
    "MessagesSource",
    "run_components",
    "sample_messages",
    "synthetic_messages",
]

SOURCE_NAME = "testing-messages"
SINK_NAME = "testing-collect"

# Messages and collections live in this process, found by a key in the components' configs, because
# a config is validated data (it is never a Python object handed through).
_feeds: dict[str, list[RawMessage]] = {}
_collections: dict[str, Collected] = {}
_keys = itertools.count(1)


@dataclass(slots=True)
class Collected:
    """What reached the collecting sink: alerts in arrival order, each filter's matches, and the run's
    dead letters (reason -> count)."""

    alerts: list[Alert] = field(default_factory=list)
    matches: dict[str, list[Alert]] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)


def synthetic_messages(
    alerts: int, surveys: Sequence[str] = ("ztf", "rubin"), seed: int = 42, cutouts: bool = False
) -> list[RawMessage]:
    """A synthetic night in the surveys' real wire formats (ZTF Avro containers, Rubin wire format)."""
    config = SyntheticConfig.model_validate(
        {"alerts": alerts, "surveys": list(surveys), "seed": seed, "cutouts": cutouts}
    )
    return [RawMessage(payload, origin) for origin, payload in SyntheticNight(config)]


def sample_messages(folder: Path | None = None) -> list[RawMessage]:
    """The real alerts under ``folder`` (default ``$STARLING_SAMPLES``): every ``.avro``, ``.bin`` or
    wire-format file, and the alerts inside ``.tar(.gz)`` archives, found recursively, in name order."""
    root = folder or (Path(os.environ["STARLING_SAMPLES"]) if os.environ.get("STARLING_SAMPLES") else None)
    if root is None or not root.is_dir():
        raise ConfigError(f"no samples folder at {root} (pass one, or set STARLING_SAMPLES)")
    return list(iter_messages([root]))


class MessagesConfig(ComponentConfig):
    key: str = Field(description="the messages handed to run_components (kept in this process)")


class MessagesSource(Source[MessagesConfig]):
    """Replays messages held in this process (see :func:`run_components`)."""

    Config: ClassVar[type[ComponentConfig]] = MessagesConfig

    def expected_count(self) -> int:
        return len(_feeds[self.config.key])

    def messages(self) -> Iterator[RawMessage]:
        return iter(_feeds[self.config.key])


class CollectConfig(ComponentConfig):
    key: str = Field(description="where the collected alerts are kept (in this process)")


class CollectingSink(Sink[CollectConfig]):
    """Keeps every alert and every filter's matches that reach it."""

    Config: ClassVar[type[ComponentConfig]] = CollectConfig

    def write(self, batch: Batch) -> None:
        collected = _collections[self.config.key]
        collected.alerts.extend(batch.alerts)
        for name, matched in batch.matches.items():
            collected.matches.setdefault(name, []).extend(matched)


def run_components(
    components: Sequence[ComponentSpec],
    messages: Sequence[RawMessage],
    output_dir: Path | None = None,
    batch_size: int = 500,
) -> Collected:
    """Run ``messages`` through the given annotators, filters and sinks (each placed in its stage by
    its kind, in the given order) and a collecting sink last, in the embedded runtime, assembled as
    every pipeline is (an ``adql`` filter's outputs are delivered). The testing source and sink are
    registered for the run only."""
    stages: dict[str, list[ComponentSpec]] = {"annotator": [], "filter": [], "sink": []}
    for component in components:
        kind = component_class(component.use).kind
        if kind == "source":
            raise ConfigError(f"{component.use!r} is a source; give its messages instead")
        stages[kind].append(component)
    key = f"run-{next(_keys)}"
    _feeds[key] = list(messages)
    _collections[key] = collected = Collected()
    spec = route_deliveries(
        PipelineSpec(
            batch_size=batch_size,
            source=ComponentSpec(use=SOURCE_NAME, config={"key": key}),
            stages=default_stages(
                annotators=stages["annotator"],
                filters=stages["filter"],
                sinks=[*stages["sink"], ComponentSpec(use=SINK_NAME, name=SINK_NAME, config={"key": key})],
            ),
        )
    )
    register_component(SOURCE_NAME, MessagesSource)
    register_component(SINK_NAME, CollectingSink)
    try:
        with tempfile.TemporaryDirectory(prefix="starling-testing-") as scratch:
            summary = EmbeddedPipeline(spec, output_dir or Path(scratch)).run()
    finally:
        _feeds.pop(key, None)
        _collections.pop(key, None)
        unregister_component(SOURCE_NAME)
        unregister_component(SINK_NAME)
    collected.dead_letters = dict(summary.dead_letters)
    return collected
