"""Put a source's messages on a Kafka topic, as a survey would: a replay of files, or a synthetic night.

The bytes go out unchanged (ZTF containers, Rubin wire format). A rate (alerts per second) paces
the feed for latency measurements; by default it goes as fast as Kafka takes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import Producer

from starling.core.component import RawMessage, Source
from starling.core.kafka_settings import KafkaSettings
from starling.core.registry import build_component
from starling.core.spec import PipelineSpec
from starling.transport.kafka.clients import DeliveryTracker, ensure_topics, producer_config


def source_messages(spec: PipelineSpec) -> Iterator[RawMessage]:
    """The messages of the pipeline's source, as they come (a synthetic night's are made as they are read)."""
    source = build_component(spec.source.use, spec.source.config, spec.source.instance_name, "source")
    assert isinstance(source, Source)
    return source.messages()


def feed(
    spec: PipelineSpec,
    topic: str | None = None,
    rate_per_s: float = 0.0,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    messages: Iterable[RawMessage] | None = None,
) -> int:
    """Produce the pipeline's source messages (or ``messages``, made beforehand: a benchmark's, so that
    making them is not timed) to ``topic`` (default ``<prefix>.raw``); returns the count."""
    settings: KafkaSettings = spec.kafka
    target = topic or settings.raw_topic
    ensure_topics(settings, [target])
    if messages is None:
        messages = source_messages(spec)
    producer = Producer({**producer_config(settings), "linger.ms": 1 if rate_per_s else 20})
    tracker = DeliveryTracker()
    sent = 0
    started = time.perf_counter()
    for message in messages:
        if limit is not None and sent >= limit:
            break
        if rate_per_s:
            due = started + sent / rate_per_s
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        headers: list[tuple[str, Any]] = [("origin", message.origin.encode())]
        while True:
            try:
                producer.produce(target, value=message.payload, headers=headers, on_delivery=tracker.callback)
                break
            except BufferError:
                producer.poll(0.2)
        producer.poll(0)
        sent += 1
        if on_progress is not None and sent % 500 == 0:
            on_progress(sent)
    while producer.flush(1.0) > 0:
        pass
    tracker.raise_if_failed()
    if on_progress is not None:
        on_progress(sent)
    return sent
