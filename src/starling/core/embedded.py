"""The embedded runtime: every stage of a pipeline in one process, batches passed in memory.

    source -> decode -> each stage's annotators, filters, sinks, stage after stage   (one batch at a time)

Sinks are flushed after every batch: that is the commit point. Dead letters go to
``dead-letters.jsonl`` in the output directory. An outage (a full disk, a locked store) holds the
batch: it is taken again after a back-off until it goes through, and nothing of it is dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from starling.alert.decoder import AlertDecoder
from starling.core.chain import Chain, RunStats
from starling.core.collector import stage_collector
from starling.core.component import Batch, Component, RawMessage, RunContext, Source
from starling.core.deadletter import DeadLetterFile
from starling.core.live import LiveRuntime, build_stage_components
from starling.core.registry import build_component
from starling.core.spec import PipelineSpec
from starling.errors import OutageError

DEAD_LETTER_FILE = "dead-letters.jsonl"


@dataclass(slots=True)
class RunSummary:
    stats: RunStats
    dead_letters: dict[str, int]
    dead_letter_path: Path | None
    outputs: dict[str, dict[str, Any]]


def chunks(items: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def build_chain_components(spec: PipelineSpec) -> list[Component[Any]]:
    """The components of every stage of a pipeline, built and validated, in chain order."""
    return [c for stage in spec.stages for c in build_stage_components(stage, lambda config: config)]


class EmbeddedPipeline(LiveRuntime):
    """Builds the components of a :class:`PipelineSpec` and runs them in this process.

    It is a :class:`LiveRuntime`: served by the control API (``starling run --control-port``), its
    components can be added, removed, reordered and reconfigured between batches, and it can be
    paused, resumed and drained (the source stops being read after the batch in hand).
    """

    stage = "embedded"

    def __init__(self, spec: PipelineSpec, output_dir: Path, decoder: AlertDecoder | None = None) -> None:
        self.spec = spec
        self.output_dir = output_dir
        self.decoder = decoder or AlertDecoder()
        source = build_component(spec.source.use, spec.source.config, spec.source.instance_name, "source")
        assert isinstance(source, Source)
        self.source: Source[Any] = source
        self.dead_letters: DeadLetterFile = DeadLetterFile(output_dir / DEAD_LETTER_FILE)
        self.chain = Chain(build_chain_components(spec), self.dead_letters)
        self.init_live([c for stage in spec.stages for c in stage.components])

    def run(self, on_batch: Callable[[RunStats], None] | None = None) -> RunSummary:
        context = RunContext(output_dir=self.output_dir, kafka=self.spec.kafka)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        components: list[Component[Any]] = [self.source, *self.chain.components]
        for component in components:
            component.setup(context)
        self.stats.expected_messages = self.source.expected_count()
        self._ready.set()
        try:
            with stage_collector():  # its objects are short-lived: the collector runs seldom
                for chunk in chunks(self.source.messages(), self.spec.batch_size):
                    self._apply_pending()
                    while self._paused.is_set() and not self._stop.is_set() and not self._draining.is_set():
                        time.sleep(0.05)
                    self.process_messages(chunk)
                    if on_batch is not None:
                        on_batch(self.stats)
                    if self._stop.is_set() or self._draining.is_set():
                        break
        finally:
            for component in components:
                component.flush()
            for component in components:
                component.close()
            self.dead_letters.close()
            self.stats.finished = time.perf_counter()
            if self._draining.is_set():
                self._drained.set()
        return RunSummary(
            stats=self.stats,
            dead_letters=dict(self.dead_letters.by_reason),
            dead_letter_path=self.dead_letters.path if len(self.dead_letters) else None,
            outputs={
                name: described
                for name, described in ((c.name, c.describe()) for c in components)
                if described
            },
        )

    def process_messages(self, messages: list[RawMessage]) -> Batch:
        """Decode a chunk of messages and pass the alerts through every component; through an outage,
        take the chunk again until it goes through (or the runtime is stopped)."""
        while True:
            try:
                with self.chain.batch():
                    alerts, payloads = self.chain.decode(messages, self.decoder)
                    batch = self.chain.run(Batch(alerts), payloads)
                self.dead_letters.flush()
            except OutageError as outage:
                if self._stop.is_set():
                    raise
                self.backoff.wait(outage, self._stop, self.stage)
                continue
            self.backoff.clear()
            return batch
