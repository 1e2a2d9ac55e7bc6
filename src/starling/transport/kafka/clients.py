"""Kafka clients for Starling's data plane: topics, consumer-group lag, delivery tracking.

Survey streams come in as they are (ZTF: a container file per message; Rubin: the Confluent wire
format). Between stages travel envelopes (``starling.transport.kafka.envelope``). Every client is built
from :class:`KafkaSettings`, whose ``client`` table is passed through to librdkafka unchanged, so
SASL/SCRAM and TLS work as usual::

    [kafka.client]
    "security.protocol" = "SASL_SSL"
    "sasl.mechanisms" = "SCRAM-SHA-512"
    "sasl.username" = "..."
    "sasl.password" = "..."
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from starling.core.kafka_settings import KafkaSettings
from starling.errors import KafkaUnavailableError, StarlingError

# The largest message a producer sends and a topic of the pipeline takes.
MAX_MESSAGE_BYTES = 8_000_000


# A worker run as a principal of its own (a user's session stage) finds its identity in this file: the
# librdkafka settings of the users' listener with its SASL name and password (``control.session_kafka``).
IDENTITY_ENV = "STARLING_KAFKA_IDENTITY_FILE"


@functools.cache
def own_identity() -> dict[str, str]:
    """This process's own Kafka identity (empty: the pipeline's). Read once; a file that is named but
    cannot be read stops the process: it must never fall back to the pipeline's wider access."""
    path = os.environ.get(IDENTITY_ENV)
    if not path:
        return {}
    try:
        identity = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise StarlingError(f"cannot read this worker's Kafka identity ({IDENTITY_ENV}): {exc}") from None
    return {str(key): str(value) for key, value in identity.items()}


def require_identity(stage: str, own_principal: bool) -> None:
    """A worker of a stage that reaches Kafka as a principal of its own refuses to run without it."""
    if own_principal and not own_identity():
        raise StarlingError(f"{stage} reaches Kafka as a principal of its own; {IDENTITY_ENV} is not set")


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """What every client of the pipeline's Kafka is given: the servers and the pass-through settings (or,
    in a worker run as a principal of its own, that principal's)."""
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.client, **own_identity()}


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    # Idempotent producer with acks=all: a retry after a broker hiccup writes no duplicate.
    # message.timeout.ms bounds how long a broker may be away before a batch is given up.
    return {
        **client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": settings.compression,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "message.timeout.ms": 600_000,
    }


def start_from(settings: KafkaSettings, reads_survey: bool) -> str | int:
    """Where a new consumer group starts: ``start_from`` applies to the survey's topics; a stage that reads
    the chain's own topic takes all of it, or it would miss what the stage before wrote before it joined."""
    return settings.start_from if reads_survey else "earliest"


def consumer_config(settings: KafkaSettings, stage: str, reads_survey: bool = True) -> dict[str, Any]:
    return {
        **client_config(settings),
        "group.id": settings.group(stage),
        "enable.auto.commit": False,
        "auto.offset.reset": "latest" if start_from(settings, reads_survey) == "latest" else "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        # Alerts are 50-140 kB: librdkafka's default of 1 MB per partition per fetch would take
        # ~10 alerts a round trip. A short fetch wait keeps latency low at low rates.
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 16_777_216,
        "fetch.wait.max.ms": 50,
        # A batch of them fills most of the prefetch queue (64 MB), and a full queue makes librdkafka wait
        # this long before its next fetch (its default: 1 s). At the default an ingest replica spent 2.5-4.4 s
        # of 5-7 s asking for batches; at 20 ms, 0.2 s, and it took 10,000 alerts at 3,129-3,607/s instead
        # of 1,353-1,865/s (three interleaved rounds; `waits_s` in /status shows it).
        "fetch.queue.backoff.ms": 20,
        "max.poll.interval.ms": 600_000,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
    }


# Kafka's answers that refuse a topic for good (its name, one colliding with an existing topic because
# '.' and '_' are one to it, a policy of the cluster's): not Kafka being unavailable.
_REFUSALS = (KafkaError.TOPIC_EXCEPTION, KafkaError.POLICY_VIOLATION)


def create_topics(settings: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> dict[str, str]:
    """Create the topics that do not exist yet, with the configured partitions and retention; returns the
    ones Kafka refuses for good -> its reason. StarlingError for any other failure (Kafka unreachable)."""
    wanted = [t for t in topics if not t.startswith("^")]
    if not wanted:
        return {}
    admin = AdminClient(client_config(settings))
    new = [
        NewTopic(
            topic,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config={"retention.ms": str(settings.retention_ms), "max.message.bytes": str(MAX_MESSAGE_BYTES)},
        )
        for topic in wanted
    ]
    refused: dict[str, str] = {}
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            code = error.code() if isinstance(error, KafkaError) else None
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if code in _REFUSALS:
                refused[topic] = str(error.str())
                continue
            raise StarlingError(f"cannot create topic {topic}: {error}") from exc
    return refused


def ensure_topics(settings: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet; StarlingError if one cannot be."""
    if own_identity():
        return  # a principal of its own may create nothing: the controller made its topics before it started
    refused = create_topics(settings, topics, timeout_s)
    if refused:
        topic, reason = next(iter(refused.items()))
        raise StarlingError(f"cannot create topic {topic}: {reason}")


def delete_topics(settings: KafkaSettings, matching: str, timeout_s: float = 30.0) -> list[str]:
    """Delete every topic whose name contains ``matching`` (a pipeline's or a test's prefix); returns them.

    Tests and benchmarks call it when they end, or a developer's broker keeps every topic they made.
    """
    admin = AdminClient(client_config(settings))
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

    def __init__(
        self, settings: KafkaSettings, group: str, topics: list[str], reads_survey: bool = True
    ) -> None:
        self.topics = topics
        self.start_from = start_from(settings, reads_survey)
        self.consumer = Consumer({**client_config(settings), "group.id": group, "enable.auto.commit": False})

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
            raise KafkaUnavailableError(f"{len(failed)} messages not delivered, e.g. {failed[0]}")


def survey_time(message: Message) -> float | None:
    """When the survey's producer (or the broker, with log-append time) put ``message`` on Kafka, in Unix
    seconds; None when the message carries no timestamp."""
    kind, milliseconds = message.timestamp()
    return milliseconds / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE and milliseconds > 0 else None
