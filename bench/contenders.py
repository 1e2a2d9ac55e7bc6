"""What the decoding benchmarks time: plain fastavro (the baseline, as a client would use it), Starling's
decoder (with either record reader) and the whole embedded pipeline, each over messages held in memory."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fastavro

from starling.alert.decoder import AlertDecoder
from starling.alert.record_readers import RecordReader
from starling.alert.schemas import PackagedRubinSchemas
from starling.assembly import default_pipeline
from starling.core.component import ComponentConfig, RawMessage, Source
from starling.core.embedded import EmbeddedPipeline
from starling.core.registry import register_component
from starling.core.spec import ComponentSpec, PipelineSpec

Messages = list[tuple[str, bytes]]


def plain_fastavro(messages: Messages) -> Callable[[], int]:
    """The baseline: what a client does with fastavro alone (container reader; schemaless for Rubin, with
    the schema of the message's id parsed once)."""
    schemas = PackagedRubinSchemas()
    parsed: dict[int, Any] = {}

    def run() -> int:
        decoded = 0
        for _, payload in messages:
            if payload[:4] == b"Obj\x01":
                for _record in fastavro.reader(io.BytesIO(payload)):
                    decoded += 1
            else:
                schema_id = int.from_bytes(payload[1:5], "big")
                if schema_id not in parsed:
                    parsed[schema_id] = schemas.get(schema_id).parsed
                fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed[schema_id])
                decoded += 1
        return decoded

    return run


def starling_decode(
    messages: Messages, with_history: bool, reader: RecordReader | None = None, project: bool = True
) -> Callable[[], int]:
    """Starling's decoder; ``project``: Rubin's alerts read through the compiled projection (the
    default), else whole."""
    decoder = AlertDecoder(PackagedRubinSchemas(), reader=reader, project=project)

    def run() -> int:
        decoded = 0
        for origin, payload in messages:
            for alert in decoder.decode(payload, origin):
                if with_history:  # every part of it: each is built on first use
                    history = alert.history
                    _ = (history.detections, history.upper_limits, history.forced)
                decoded += 1
        return decoded

    return run


class _MemoryConfig(ComponentConfig):
    pass


class MemorySource(Source[_MemoryConfig]):
    """Replays messages held in memory, so the pipeline is timed without disk reads or generation."""

    Config: ClassVar[type[ComponentConfig]] = _MemoryConfig
    messages_to_replay: ClassVar[Messages] = []

    def messages(self) -> Iterator[RawMessage]:
        for origin, payload in self.messages_to_replay:
            yield RawMessage(payload, origin)


def embedded_pipeline(messages: Messages, spec: PipelineSpec | None = None) -> Callable[[], int]:
    """The embedded runtime of ``spec`` (default: the default pipeline) reading ``messages``, with the
    store in a fresh folder each run."""
    register_component("bench-memory", MemorySource)
    source = ComponentSpec(use="bench-memory")
    pipeline = spec.model_copy(update={"source": source}) if spec else default_pipeline(source)

    def run() -> int:
        MemorySource.messages_to_replay = messages
        with tempfile.TemporaryDirectory() as scratch:
            summary = EmbeddedPipeline(pipeline, Path(scratch)).run()
        return summary.stats.alerts_decoded

    return run
