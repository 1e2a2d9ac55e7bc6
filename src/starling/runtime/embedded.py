"""The embedded runtime: every stage of a pipeline in one process, batches passed in memory.

    source -> decode -> annotators -> filters -> sinks      (one batch at a time)

The errors of one alert never stop the stream. A message that does not decode becomes a dead letter
at once. If a component fails on a batch, its alerts are retried one at a time through that
component; those that fail alone become dead letters (with the component's error as reason) and the
others go on. Sinks are flushed after every batch: that is the commit point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.errors import AlertDecodeError
from starling.runtime.component import Batch, Component, RawMessage, RunContext, Sink, Source
from starling.runtime.deadletter import DeadLetter, DeadLetterFile
from starling.runtime.registry import build_component
from starling.runtime.spec import PipelineSpec

DEAD_LETTER_FILE = "dead-letters.jsonl"


@dataclass(slots=True)
class StageCounts:
    """Per component: alerts that came in, went out (for a filter: matched), and failed."""

    kind: str
    alerts_in: int = 0
    alerts_out: int = 0
    failed: int = 0


@dataclass(slots=True)
class RunStats:
    messages_in: int = 0
    alerts_decoded: int = 0
    expected_messages: int | None = None
    stages: dict[str, StageCounts] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def alerts_per_s(self) -> float:
        return self.alerts_decoded / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(slots=True)
class RunSummary:
    stats: RunStats
    dead_letters: dict[str, int]
    dead_letter_path: Path | None
    outputs: dict[str, dict[str, Any]]


def _chunks(items: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class EmbeddedPipeline:
    """Builds the components of a :class:`PipelineSpec` and runs them in this process."""

    def __init__(self, spec: PipelineSpec, output_dir: Path, decoder: AlertDecoder | None = None) -> None:
        self.spec = spec
        self.output_dir = output_dir
        self.decoder = decoder or AlertDecoder()
        source = build_component(spec.source.use, spec.source.config, spec.source.instance_name, "source")
        assert isinstance(source, Source)
        self.source: Source[Any] = source
        self.annotators = [
            build_component(c.use, c.config, c.instance_name, "annotator") for c in spec.annotators
        ]
        self.filters = [build_component(c.use, c.config, c.instance_name, "filter") for c in spec.filters]
        self.sinks = [build_component(c.use, c.config, c.instance_name, "sink") for c in spec.sinks]
        self.dead_letters = DeadLetterFile(output_dir / DEAD_LETTER_FILE)
        self.stats = RunStats()
        self.stats.stages["decode"] = StageCounts("decoder")
        for component in self.chain:
            self.stats.stages[component.name] = StageCounts(component.kind)

    @property
    def chain(self) -> list[Component[Any]]:
        """The components a batch passes through, in order."""
        return [*self.annotators, *self.filters, *self.sinks]

    def run(self, on_batch: Callable[[RunStats], None] | None = None) -> RunSummary:
        context = RunContext(output_dir=self.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        components: list[Component[Any]] = [self.source, *self.chain]
        for component in components:
            component.setup(context)
        self.stats.expected_messages = self.source.expected_count()
        try:
            for chunk in _chunks(self.source.messages(), self.spec.batch_size):
                self.process_messages(chunk)
                if on_batch is not None:
                    on_batch(self.stats)
        finally:
            for component in components:
                component.flush()
            for component in components:
                component.close()
            self.dead_letters.close()
            self.stats.finished = time.perf_counter()
        return RunSummary(
            stats=self.stats,
            dead_letters=dict(self.dead_letters.by_reason),
            dead_letter_path=self.dead_letters.path if len(self.dead_letters) else None,
            outputs={c.name: c.describe() for c in components if c.describe()},
        )

    def process_messages(self, messages: list[RawMessage]) -> Batch:
        """Decode a chunk of messages and pass the alerts through every component."""
        decode = self.stats.stages["decode"]
        alerts: list[Alert] = []
        payloads: dict[int, RawMessage] = {}
        for message in messages:
            self.stats.messages_in += 1
            decode.alerts_in += 1
            try:
                decoded = self.decoder.decode(message.payload, message.origin)
            except AlertDecodeError as exc:
                decode.failed += 1
                self.dead_letters.add(
                    DeadLetter(message.origin, "decode", "decoder", exc.reason, message.payload)
                )
                continue
            for alert in decoded:
                payloads[id(alert)] = message
            alerts.extend(decoded)
        decode.alerts_out += len(alerts)
        self.stats.alerts_decoded += len(alerts)
        batch = Batch(alerts)
        for component in self.chain:
            batch = self._apply(component, batch, payloads)
        self.dead_letters.flush()
        return batch

    def _apply(self, component: Component[Any], batch: Batch, payloads: dict[int, RawMessage]) -> Batch:
        counts = self.stats.stages[component.name]
        counts.alerts_in += len(batch)
        try:
            result = component.process(batch)
        except Exception:  # a component's bug or bad data: isolate the alerts at fault below
            result = self._apply_one_by_one(component, batch, payloads)
        if isinstance(component, Sink):
            component.flush()
        matched = result.matches.get(component.name)
        counts.alerts_out += len(matched) if matched is not None else len(result)
        return result

    def _apply_one_by_one(
        self, component: Component[Any], batch: Batch, payloads: dict[int, RawMessage]
    ) -> Batch:
        survivors: list[Alert] = []
        matches: dict[str, list[Alert]] = {name: [] for name in batch.matches}
        for alert in batch.alerts:
            single = Batch([alert], {k: [a for a in v if a is alert] for k, v in batch.matches.items()})
            try:
                out = component.process(single)
            except Exception as exc:
                self.stats.stages[component.name].failed += 1
                message = payloads.get(id(alert), RawMessage(b"", alert.origin))
                reason = f"{type(exc).__name__}: {exc}"
                self.dead_letters.add(
                    DeadLetter(message.origin, component.kind, component.name, reason, message.payload)
                )
                continue
            survivors.append(alert)
            for name, matched in out.matches.items():
                matches.setdefault(name, []).extend(matched)
        return Batch(survivors, matches)
