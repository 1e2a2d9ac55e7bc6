"""Where a rewired stage begins on each partition: its start, or what its group committed if later."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, TopicPartition

from starling.errors import ConfigError
from starling.transport.kafka.wiring import begin_at, format_start, parse_start


class _CommitRecorder:
    """Records commits: all ``begin_at`` asks of a consumer."""

    def __init__(self) -> None:
        self.commits: list[list[TopicPartition]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> Any:
        assert asynchronous is False
        self.commits.append(offsets)


def test_start_round_trips_and_malformed_keys_are_refused() -> None:
    offsets = {("p.stage.classify", 0): 12, ("p.ingested", 3): 0}
    assert parse_start(format_start(offsets)) == offsets
    for wrong in ({"topic": 1}, {"/0": 1}, {"t/x": 1}, {"t/0": -1}):
        with pytest.raises(ConfigError):
            parse_start(wrong)


def test_a_partition_begins_at_its_start_or_later_and_the_start_is_committed() -> None:
    consumer = _CommitRecorder()
    partitions = [TopicPartition("t", p) for p in range(4)]
    committed = [
        TopicPartition("t", 0, OFFSET_INVALID),  # never committed: begins at its start
        TopicPartition("t", 1, 5),  # behind its start (an older shape's): moved to it
        TopicPartition("t", 2, 50),  # past it (taken since the wiring): stays
        TopicPartition("t", 3, 7),  # no start given: stays
    ]
    moved = begin_at(consumer, partitions, committed, {("t", 0): 10, ("t", 1): 20, ("t", 2): 30})  # type: ignore[arg-type]
    assert moved == {("t", 0): 10, ("t", 1): 20}
    assert [tp.offset for tp in partitions[:2]] == [10, 20]
    assert partitions[2].offset == partitions[3].offset == OFFSET_INVALID  # as the group has it
    assert [(tp.partition, tp.offset) for tp in consumer.commits[0]] == [(0, 10), (1, 20)]
    assert begin_at(consumer, partitions, committed, {}) == {}
    assert len(consumer.commits) == 1  # nothing to move, nothing committed
