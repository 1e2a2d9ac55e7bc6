"""Kafka as Starling's data plane: settings, clients, topics, and dead letters on a topic.

Survey streams come in as they are (ZTF: a container file per message; Rubin: the Confluent wire
format). Between stages travel envelopes (``starling.runtime.envelope``). Every client is built
from :class:`KafkaSettings`, whose ``client`` table is passed through to librdkafka unchanged, so
SASL/SCRAM and TLS work as usual::

    [kafka.client]
    "security.protocol" = "SASL_SSL"
    "sasl.mechanisms" = "SCRAM-SHA-512"
    "sasl.username" = "..."
    "sasl.password" = "..."
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import BaseModel, ConfigDict, Field

from starling.errors import StarlingError
from starling.runtime.deadletter import DeadLetter, DeadLetterOutput

DEFAULT_BOOTSTRAP = "127.0.0.1:39092"


def _default_bootstrap() -> str:
    return os.environ.get("STARLING_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP


class KafkaSettings(BaseModel):
    """How a pipeline uses Kafka. Everything has a default that works with ``scripts/kafka start``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(default_factory=_default_bootstrap)
    topic_prefix: str = Field("starling", pattern=r"^[A-Za-z0-9._-]+$")
    input_topics: list[str] = Field(
        default_factory=list,
        description="survey topics the ingest stage reads (names, or regexes starting with ^, e.g. "
        "^ztf_20261122_programid1$); default <prefix>.raw, which `starling feed` fills",
    )
    start_from: Literal["earliest", "latest"] | int = Field(
        "earliest",
        description="where a new consumer group starts: earliest, latest, or a time (ms since epoch)",
    )
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)
    compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = Field(
        "none", description="producer compression; ZTF cutouts are gzipped already, so 'none' saves CPU"
    )
    client: dict[str, str] = Field(default_factory=dict, description="librdkafka settings passed through")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    @property
    def raw_topic(self) -> str:
        return self.topic("raw")

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("dead-letters")

    def group(self, stage: str) -> str:
        return f"{self.topic_prefix}.{stage}"

    def common(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.client}

    def producer_config(self) -> dict[str, Any]:
        # Idempotent producer with acks=all: a retry after a broker hiccup writes no duplicate.
        # message.timeout.ms bounds how long a broker may be away before a batch is given up.
        return {
            **self.common(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": self.compression,
            "message.max.bytes": 8_000_000,
            "message.timeout.ms": 600_000,
        }

    def consumer_config(self, stage: str) -> dict[str, Any]:
        return {
            **self.common(),
            "group.id": self.group(stage),
            "enable.auto.commit": False,
            "auto.offset.reset": "latest" if self.start_from == "latest" else "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # Alerts are 50-140 kB: librdkafka's default of 1 MB per partition per fetch would take
            # ~10 alerts a round trip. A short fetch wait keeps latency low at low rates.
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 16_777_216,
            "fetch.wait.max.ms": 50,
            "max.poll.interval.ms": 600_000,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
        }


def ensure_topics(settings: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet, with the configured partitions and retention."""
    wanted = [t for t in topics if not t.startswith("^")]
    if not wanted:
        return
    admin = AdminClient(settings.common())
    new = [
        NewTopic(
            topic,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config={"retention.ms": str(settings.retention_ms), "max.message.bytes": "8000000"},
        )
        for topic in wanted
    ]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise StarlingError(f"cannot create topic {topic}: {error}") from exc


def delete_topics(settings: KafkaSettings, matching: str, timeout_s: float = 30.0) -> list[str]:
    """Delete every topic whose name contains ``matching`` (a pipeline's or a test's prefix); returns them.

    Tests and benchmarks call it when they end, or a developer's broker keeps every topic they made.
    """
    admin = AdminClient(settings.common())
    names = [
        t for t in admin.list_topics(timeout=timeout_s).topics if matching in t and not t.startswith("__")
    ]
    if names:
        for future in admin.delete_topics(names, operation_timeout=timeout_s).values():
            future.result(timeout=timeout_s)
    return names


class GroupLag:
    """A consumer group's lag read from the broker: end offsets less the group's committed offsets.

    It counts what no replica has committed yet, whatever replicas come and go; a partition the group
    has never committed counts from its first offset. The reader never joins the group.
    """

    def __init__(self, settings: KafkaSettings, group: str, topics: list[str]) -> None:
        self.topics = topics
        self.start_from = settings.start_from
        self.consumer = Consumer({**settings.common(), "group.id": group, "enable.auto.commit": False})

    def read(self, timeout_s: float = 10.0) -> int:
        cluster = self.consumer.list_topics(timeout=timeout_s).topics
        partitions = [
            TopicPartition(name, p)
            for name, metadata in cluster.items()
            if any(re.fullmatch(t[1:], name) if t.startswith("^") else t == name for t in self.topics)
            for p in metadata.partitions
        ]
        if not partitions:
            return 0
        lag = 0
        for tp in self.consumer.committed(partitions, timeout=timeout_s):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=timeout_s)
            if tp.offset >= 0:
                lag += high - tp.offset
            elif self.start_from != "latest":  # not committed yet: where a new group would start
                lag += high - low
        return lag

    def close(self) -> None:
        self.consumer.close()


class DeliveryTracker:
    """Counts what a producer still owes, and remembers the first delivery failure."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self._lock = threading.Lock()

    def callback(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            with self._lock:
                self.failed.append(f"{message.topic()}: {error.str()}")

    def raise_if_failed(self) -> None:
        with self._lock:
            failed, self.failed = self.failed, []
        if failed:
            raise StarlingError(f"{len(failed)} messages not delivered, e.g. {failed[0]}")


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
            **settings.common(),
            "group.id": settings.group("requeue"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(settings.producer_config())
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
