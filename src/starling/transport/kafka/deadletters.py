"""Dead letters on a Kafka topic, and putting them back on the survey's topic once fixed."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition

from starling.core.deadletter import DeadLetter, DeadLetterOutput
from starling.core.kafka_settings import KafkaSettings
from starling.transport.kafka.clients import (
    MAX_MESSAGE_BYTES,
    DeliveryTracker,
    client_config,
    producer_config,
)

# Headers and reason leave room under the message limit; a reason is a sentence, not a dump.
_MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES - 64_000
_MAX_REASON_CHARS = 2_000


class KafkaDeadLetters(DeadLetterOutput):
    """Dead letters on a topic: the original bytes as the value, the reason and origin as headers."""

    def __init__(self, producer: Producer, topic: str, tracker: DeliveryTracker) -> None:
        super().__init__()
        self.producer = producer
        self.topic = topic
        self.tracker = tracker

    @property
    def location(self) -> str:
        return f"kafka topic {self.topic}"

    def write(self, letter: DeadLetter) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", letter.reason[:_MAX_REASON_CHARS].encode()),
            ("stage", letter.stage.encode()),
            ("component", letter.component.encode()),
            ("origin", letter.origin.encode()),
        ]
        payload = letter.payload
        if len(payload) > _MAX_PAYLOAD_BYTES:
            # Too large for the topic: the letter keeps its origin (topic/partition@offset) as the
            # reference to the message, which is still on its own topic until its retention ends.
            headers.append(("payload_bytes", str(len(payload)).encode()))
            payload = b""
        self.producer.produce(self.topic, value=payload, headers=headers, on_delivery=self.tracker.callback)


def _end_offsets(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Each partition's end offset now: the letters a requeue run takes (those after are new ones)."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return {}
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        if high > low:
            ends[partition] = high
    return ends


def requeue_dead_letters(settings: KafkaSettings, idle_s: float = 5.0) -> dict[str, int]:
    """Put the dead letters of a deployment back on the topics they came from, once their cause is
    fixed; returns how many went to each topic. A dead letter keeps the survey's original message and
    its ``origin`` (whichever stage refused it), so it goes back to the survey's topic and the whole
    chain takes it again (the store is idempotent).

    Reads ``<prefix>.dead-letters`` in the group ``<prefix>.requeue`` (so a letter is requeued once),
    up to the end each partition had when the run began: a letter that fails again while the run goes
    on is left for the next run, so a cause not yet fixed cannot make the run go round forever. Stops
    there, or when nothing has come for ``idle_s``; commits only after the copies are acknowledged.
    """
    consumer = Consumer(
        {
            **client_config(settings),
            "group.id": settings.group("requeue"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(producer_config(settings))
    tracker = DeliveryTracker()
    counts: dict[str, int] = {}
    taken: list[TopicPartition] = []
    try:
        ends = _end_offsets(consumer, settings.dead_letter_topic)
        consumer.subscribe([settings.dead_letter_topic])
        last_seen = time.monotonic()
        while ends and time.monotonic() - last_seen < idle_s:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            last_seen = time.monotonic()
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            if offset >= ends.get(partition, 0):
                ends.pop(partition, None)  # past where this run stops: later letters, left alone
                continue
            topic = _origin_topic(message.headers() or [], settings)
            producer.produce(topic, value=message.value(), on_delivery=tracker.callback)
            counts[topic] = counts.get(topic, 0) + 1
            taken.append(TopicPartition(settings.dead_letter_topic, partition, offset + 1))
            producer.poll(0)
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        producer.flush(60)
        tracker.raise_if_failed()
        if taken:
            consumer.commit(offsets=_latest_per_partition(taken), asynchronous=False)
    finally:
        consumer.close()
    return counts


def _origin_topic(
    headers: dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]], settings: KafkaSettings
) -> str:
    raw_origin = (headers if isinstance(headers, dict) else dict(headers)).get("origin") or b""
    origin = raw_origin.decode() if isinstance(raw_origin, bytes) else str(raw_origin)
    return origin.rsplit("/", 1)[0] if "/" in origin else settings.raw_topic


def _latest_per_partition(offsets: list[TopicPartition]) -> list[TopicPartition]:
    latest: dict[tuple[str, int], int] = {}
    for tp in offsets:
        latest[tp.topic, tp.partition] = max(latest.get((tp.topic, tp.partition), 0), tp.offset)
    return [TopicPartition(t, p, o) for (t, p), o in latest.items()]
