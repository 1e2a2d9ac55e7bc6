"""Handing a stream over from one consumer group to another, or from one topic to another, exactly.

When a stage joins a running chain between two others, the new stage must start reading exactly where the
stage after it had committed, and that stage must start its new input exactly where the new stage begins
to write. When a stage leaves, the stage after it must go back to the left stage's input exactly where the
left stage had committed. Each step is a consumer group's committed offsets, read or written while the
group has no member (its replicas drained): what the broker holds is then the whole truth.

A partition a group has never committed on is resolved to where the group would have started
(``clients.start_from``): the handover never changes which alerts a stage takes.
"""

from __future__ import annotations

import re
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from starling.core.kafka_settings import KafkaSettings
from starling.errors import OutageError
from starling.transport.kafka.clients import client_config, start_from

Offsets = dict[tuple[str, int], int]


def _partitions(consumer: Consumer, topics: list[str], timeout_s: float) -> list[TopicPartition]:
    cluster = consumer.list_topics(timeout=timeout_s).topics
    return [
        TopicPartition(name, p)
        for name, metadata in sorted(cluster.items())
        if any(re.fullmatch(t[1:], name) if t.startswith("^") else t == name for t in topics)
        for p in sorted(metadata.partitions)
    ]


def group_position(
    settings: KafkaSettings, group: str, topics: list[str], reads_survey: bool, timeout_s: float = 30.0
) -> Offsets:
    """Where ``group`` stands on every partition of ``topics``: its committed offset, or, where it has
    none, the offset it would start from."""
    consumer = Consumer({**client_config(settings), "group.id": group, "enable.auto.commit": False})
    try:
        positions: Offsets = {}
        fresh: list[TopicPartition] = []
        for tp in consumer.committed(_partitions(consumer, topics, timeout_s), timeout=timeout_s):
            if tp.offset >= 0:
                positions[tp.topic, tp.partition] = tp.offset
            else:
                fresh.append(tp)
        start = start_from(settings, reads_survey)
        if isinstance(start, int) and fresh:
            stamped = [TopicPartition(tp.topic, tp.partition, start) for tp in fresh]
            for tp in consumer.offsets_for_times(stamped, timeout=timeout_s):
                low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
                positions[tp.topic, tp.partition] = tp.offset if tp.offset >= 0 else high
        else:
            for tp in fresh:
                low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
                positions[tp.topic, tp.partition] = high if start == "latest" else low
        return positions
    finally:
        consumer.close()


def end_offsets(settings: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> Offsets:
    """The end of every partition of ``topics``: where a reader starts to see only what comes next."""
    consumer = Consumer(
        {**client_config(settings), "group.id": "starling.handover", "enable.auto.commit": False}
    )
    try:
        ends: Offsets = {}
        for tp in _partitions(consumer, topics, timeout_s):
            ends[tp.topic, tp.partition] = consumer.get_watermark_offsets(tp, timeout=timeout_s)[1]
        return ends
    finally:
        consumer.close()


def listed_end_offsets(settings: KafkaSettings, topic: str, timeout_s: float = 30.0) -> Offsets:
    """The end of every partition of ``topic``, once Kafka's metadata lists them all (a topic just made is
    listed a moment later); OutageError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while len(written := end_offsets(settings, [topic])) < settings.partitions:
        if time.monotonic() > deadline:
            raise OutageError(f"Kafka does not list the {settings.partitions} partitions of {topic}")
        time.sleep(0.1)
    return written


def wait_group_empty(settings: KafkaSettings, group: str, timeout_s: float = 60.0) -> None:
    """Wait until ``group`` has no member (its replicas have left): only then is what it committed final.
    OutageError after ``timeout_s``."""
    admin = AdminClient(client_config(settings))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            described = admin.describe_consumer_groups([group], request_timeout=10.0)[group].result()
            if not described.members:
                return
            left = f"{len(described.members)} members still in it"
        except KafkaException as exc:
            left = str(exc)
        if time.monotonic() > deadline:
            raise OutageError(f"consumer group {group} did not empty in {timeout_s:.0f} s: {left}")
        time.sleep(0.2)


def set_group_position(
    settings: KafkaSettings, group: str, offsets: Offsets, timeout_s: float = 60.0
) -> None:
    """Commit ``offsets`` for ``group``, which must have no member: the broker refuses to move a group
    whose members are still leaving, so this tries again until they are gone (OutageError after
    ``timeout_s``)."""
    if not offsets:
        return
    admin = AdminClient(client_config(settings))
    request = ConsumerGroupTopicPartitions(
        group,
        [TopicPartition(topic, partition, offset) for (topic, partition), offset in sorted(offsets.items())],
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            moved = admin.alter_consumer_group_offsets([request], request_timeout=10.0)[group].result()
            refused = [f"{tp.topic}/{tp.partition}: {tp.error}" for tp in moved.topic_partitions if tp.error]
            if not refused:
                return
            raise OutageError(f"cannot move consumer group {group} on {', '.join(refused)}")
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise OutageError(f"cannot move consumer group {group}: {exc}") from exc
            time.sleep(0.5)


def wait_committed(settings: KafkaSettings, group: str, offsets: Offsets, timeout_s: float = 30.0) -> None:
    """Wait until ``group`` has committed at least ``offsets`` on each of their partitions (OutageError
    after ``timeout_s``)."""
    if not offsets:
        return
    consumer = Consumer({**client_config(settings), "group.id": group, "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            wanted = [TopicPartition(t, p) for t, p in sorted(offsets)]
            committed = consumer.committed(wanted, timeout=max(1.0, deadline - time.monotonic()))
            behind = [
                f"{tp.topic}/{tp.partition}"
                for tp in committed
                if tp.offset < offsets[tp.topic, tp.partition]
            ]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise OutageError(f"group {group} has not committed its start on {', '.join(behind)}")
            time.sleep(0.1)
    except KafkaException as exc:
        raise OutageError(f"cannot read what group {group} committed: {exc}") from exc
    finally:
        consumer.close()
