"""The component contract: the one shape every source, annotator, filter and sink has.

A component has a pydantic ``Config`` model (validated before the component is built), and the
lifecycle ``setup(context)`` -> ``process(batch)`` many times -> ``flush()`` -> ``close()``.
Stages work on :class:`Batch` es of alerts, never one Python call per alert per component.

- :class:`Source` yields raw messages (bytes and where they came from); the runtime decodes them.
- :class:`Annotator` writes ``alert.annotations[self.name]`` for the alerts of a batch.
- :class:`Filter` judges a whole batch at once and records which alerts it matched.
- :class:`Sink` receives every batch (all alerts and every filter's matches) and writes it out;
  ``flush()`` is where it must make its writes durable.

If ``process`` raises, the runtime retries the alerts of that batch one by one to find the ones at
fault; those become dead letters with the error as reason, and the rest of the stream goes on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from starling.alert.model import Alert

if TYPE_CHECKING:
    from starling.core.kafka_settings import KafkaSettings

ComponentKind = Literal["source", "annotator", "filter", "sink"]


class ComponentConfig(BaseModel):
    """Base of every component's config: frozen, and unknown keys are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


ConfigT = TypeVar("ConfigT", bound=ComponentConfig)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as a source delivers it: the bytes and a name for where it came from."""

    payload: bytes
    origin: str


@dataclass(slots=True)
class Batch:
    """The alerts a stage works on together, and what the filters matched among them."""

    alerts: list[Alert]
    # Each filter's matches: a list, or positions in the batch read as one (``matches.Picked``).
    matches: dict[str, Sequence[Alert]] = field(default_factory=dict)
    # What the components of a stage compute once per batch and share (the filters' columns).
    shared: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.alerts)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the runtime hands every component at setup: where to put files, and the run's name."""

    output_dir: Path
    run_name: str = "starling"
    # The pipeline's Kafka settings, for components that write topics of their own (deliveries).
    kafka: KafkaSettings | None = None


class Component(ABC, Generic[ConfigT]):
    """Base of all components. Subclasses set ``kind`` and ``Config`` and implement ``process``."""

    kind: ClassVar[ComponentKind]
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig

    def __init__(self, config: ConfigT, name: str) -> None:
        self.config = config
        self.name = name

    def setup(self, context: RunContext) -> None:
        """Open files, connections, indexes. Called once before the first batch."""

    @abstractmethod
    def process(self, batch: Batch) -> Batch:
        """Do this component's work on one batch and return the batch for the next component."""

    def flush(self) -> None:
        """Make everything written so far durable (called at commit points and at the end)."""

    def close(self) -> None:
        """Release what ``setup`` acquired. Called once, after the last flush."""

    def describe(self) -> dict[str, Any]:
        """What this component reports about itself at the end of a run (paths, counts)."""
        return {}

    def counters(self) -> dict[str, Any]:
        """Live counts of its own, cheap to read, shown in the runtime's ``/status`` with its counts."""
        return {}

    @classmethod
    def cooperate(cls, batch: Batch, peers: Sequence[Component[Any]]) -> Mapping[str, Sequence[Alert]] | None:
        """Called once per batch, before any of them runs, with every instance of this class in the
        stage, so that they can do their work together (the ADQL filters are judged as one plan).

        May return, for the peers (filters) whose work on the batch it has done, their matches by name:
        when the chain reaches such a peer, it puts its matches in ``batch.matches`` (as its ``process``
        would have) instead of calling ``process``, and gives it an equal share of this call's CPU time."""
        return None


class Source(Component[ConfigT]):
    kind: ClassVar[ComponentKind] = "source"

    @abstractmethod
    def messages(self) -> Iterator[RawMessage]:
        """The raw messages, in order. May be endless (a live stream)."""

    def expected_count(self) -> int | None:
        """How many messages will come, when known in advance (for the progress bar)."""
        return None

    def process(self, batch: Batch) -> Batch:
        return batch


@dataclass(frozen=True, slots=True)
class AnnotationField:
    """One value an annotator writes, as the filter language and its documentation see it.

    The key is a path in ``alert.annotations[<annotator name>]`` (dots for nested dicts); a ``*``
    segment stands for any name (a catalogue, a watchlist).
    """

    type: Literal["float", "int", "string"]
    unit: str
    description: str


class Annotator(Component[ConfigT]):
    kind: ClassVar[ComponentKind] = "annotator"
    # What it writes, for the filter language (fields ``<annotator name>.<key>``) and its docs.
    outputs: ClassVar[dict[str, AnnotationField]] = {}

    @abstractmethod
    def annotate(self, alerts: Sequence[Alert]) -> None:
        """Set ``alert.annotations[self.name]`` on the alerts it has something to say about."""

    def process(self, batch: Batch) -> Batch:
        self.annotate(batch.alerts)
        return batch


class Filter(Component[ConfigT]):
    """AMPEL's filter contract, per batch: ``evaluate`` returns one verdict per alert."""

    kind: ClassVar[ComponentKind] = "filter"

    @abstractmethod
    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        """One boolean per alert, in order: does it pass this filter."""

    def process(self, batch: Batch) -> Batch:
        verdicts = self.evaluate(batch.alerts)
        if len(verdicts) != len(batch.alerts):
            raise RuntimeError(f"filter {self.name} judged {len(verdicts)} alerts of {len(batch.alerts)}")
        batch.matches[self.name] = [
            alert for alert, passed in zip(batch.alerts, verdicts, strict=True) if passed
        ]
        return batch


class Sink(Component[ConfigT]):
    kind: ClassVar[ComponentKind] = "sink"

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Take the batch; it need not be durable until ``flush``."""

    def process(self, batch: Batch) -> Batch:
        self.write(batch)
        return batch
