"""A stage's offsets: committed after a batch, marked before one, rewound to take a batch again.

A commit is retried while the coordinator is away; one the group refuses (it rebalanced) is given
up, and the batch is replayed by whichever member owns the partition now (idempotent writes make
that harmless). A batch is not begun while the group refuses this member's commits: it may be
another member's by now.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

log = logging.getLogger("starling.worker")

_COMMIT_RETRY_S = 1.0
_RETRIABLE_COMMIT_ERRORS = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}
# Commit errors that mean this member's view of the group is out of date.
_GROUP_MOVED_ON = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
}


def lag_behind(
    consumer: Consumer, assigned: list[tuple[str, int]], committed: dict[tuple[str, int], int]
) -> int:
    """Messages behind the end of the assigned partitions: librdkafka's positions and cached watermarks (no
    I/O); a partition not read from yet counts from where the group stands on it (``committed``)."""
    total = 0
    for tp in consumer.position([TopicPartition(t, p) for t, p in assigned]):
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            continue  # no fetch from this partition yet: nothing known
        start = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), low)
        total += max(0, high - start)
    return total


def position(message: Message) -> tuple[str, int, int]:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None
    assert partition is not None
    assert offset is not None
    return topic, partition, offset


def first_offsets(messages: list[Message]) -> dict[tuple[str, int], int]:
    first: dict[tuple[str, int], int] = {}
    for message in messages:
        topic, partition, offset = position(message)
        first[topic, partition] = min(first.get((topic, partition), offset), offset)
    return first


def next_offsets(messages: list[Message]) -> dict[tuple[str, int], int]:
    after: dict[tuple[str, int], int] = {}
    for message in messages:
        topic, partition, offset = position(message)
        after[topic, partition] = max(after.get((topic, partition), 0), offset + 1)
    return after


def rewind(consumer: Consumer, messages: list[Message]) -> None:
    """Put the consumer back at these messages' first offsets, to take them again on the next poll."""
    for (topic, partition), offset in first_offsets(messages).items():
        consumer.seek(TopicPartition(topic, partition, offset))


def commit_after(consumer: Consumer, messages: list[Message], stage: str) -> dict[tuple[str, int], int]:
    """Commit past these messages; the offsets committed (none if the group refused them)."""
    after = next_offsets(messages)
    offsets = [TopicPartition(t, p, o) for (t, p), o in after.items()]
    while True:
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return after
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() in _RETRIABLE_COMMIT_ERRORS:
                log.info("%s: commit failed (%s); retrying", stage, error.str())
                time.sleep(_COMMIT_RETRY_S)
                continue
            log.warning("%s: commit refused (%s); the batch will be replayed", stage, exc)
            return {}


def mark_in_hand(consumer: Consumer, markers: list[TopicPartition], stage: str) -> bool:
    """Commit where the group stands already, with the offsets in hand as the commit's metadata (the
    crash guard's markers). False when the group refuses it because it is rebalancing."""
    try:
        consumer.commit(offsets=markers, asynchronous=False)
    except KafkaException as exc:
        error = exc.args[0]
        if isinstance(error, KafkaError) and error.code() in _GROUP_MOVED_ON:
            log.info("%s: the group is rebalancing (%s); the batch waits for it", stage, error.str())
            return False
        log.info("%s: could not mark the batch in hand (%s)", stage, exc)  # a safety net only
    return True
