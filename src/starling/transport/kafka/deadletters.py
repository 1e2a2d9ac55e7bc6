"""Dead letters on a Kafka topic, and putting them back on the survey's topic once fixed."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer

from starling.core.deadletter import DeadLetter, DeadLetterOutput
from starling.core.kafka_settings import KafkaSettings
from starling.transport.kafka.clients import DeliveryTracker, client_config, producer_config


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
        self.producer.produce(
            self.topic,
            value=letter.payload,
            headers=[
                ("reason", letter.reason.encode()),
                ("stage", letter.stage.encode()),
                ("component", letter.component.encode()),
                ("origin", letter.origin.encode()),
            ],
            on_delivery=self.tracker.callback,
        )


def requeue_dead_letters(settings: KafkaSettings, idle_s: float = 5.0) -> dict[str, int]:
    """Put the dead letters of a deployment back on the topics they came from, once their cause is
    fixed; returns how many went to each topic. A dead letter keeps the survey's original message and
    its ``origin`` (whichever stage refused it), so it goes back to the survey's topic and the whole
    chain takes it again (the store is idempotent).

    Reads ``<prefix>.dead-letters`` in the group ``<prefix>.requeue`` (so a letter is requeued once)
    until nothing has come for ``idle_s``, and commits only after the copies are acknowledged.
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
    try:
        consumer.subscribe([settings.dead_letter_topic])
        last_seen = time.monotonic()
        while time.monotonic() - last_seen < idle_s:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            last_seen = time.monotonic()
            headers = dict(message.headers() or [])
            raw_origin = headers.get("origin") or b""
            origin = raw_origin.decode() if isinstance(raw_origin, bytes) else str(raw_origin)
            topic = origin.rsplit("/", 1)[0] if "/" in origin else settings.raw_topic
            producer.produce(topic, value=message.value(), on_delivery=tracker.callback)
            counts[topic] = counts.get(topic, 0) + 1
            producer.poll(0)
        producer.flush(60)
        tracker.raise_if_failed()
        if counts:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return counts
