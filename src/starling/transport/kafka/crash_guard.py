"""A message that crashes the worker (a segfault, a kill for memory) is dead-lettered, not retried forever.

Without a guard, such a message is a poison pill: the batch that holds it is never committed, every
replica that takes the partition over dies on it, and the partition stops for good.

Before a stage works on a batch it commits, for each partition, the batch's first offset (where the
group stands already) with a marker in the commit's metadata: the range of offsets in hand. A batch
that completes commits past them and the marker goes. A worker that finds, on being assigned a
partition, a marker at the committed offset knows the worker before it died in that range:

- after a first crash, the range is taken again one message at a time, each with its own marker
  that carries the crash, so the next crash (if it comes) names a single message;
- a single message that has been in hand at two crashes is dead-lettered with that reason, and the
  partition moves past it.

The markers live in Kafka with the group's offsets, so whichever replica takes the partition over
knows. A stage stopped on purpose (SIGTERM) finishes its batch first, so only a crash leaves one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from confluent_kafka import Message, TopicPartition

from starling.transport.kafka.offsets import position

CRASHES_BEFORE_DEAD_LETTER = 2


@dataclass(frozen=True, slots=True)
class InHand:
    """Offsets ``first`` to ``last`` of a partition were in hand when ``crashes`` workers died."""

    first: int
    last: int
    crashes: int

    def marker(self) -> str:
        return json.dumps({"starling_in_hand": [self.first, self.last], "crashes": self.crashes})


def _read_marker(metadata: str | None) -> InHand | None:
    if not metadata:
        return None
    try:
        fields = json.loads(metadata)
        first, last = fields["starling_in_hand"]
        return InHand(int(first), int(last), int(fields["crashes"]))
    except (ValueError, KeyError, TypeError):
        return None  # metadata written by someone else


class CrashGuard:
    def __init__(self) -> None:
        self._crashed: dict[tuple[str, int], InHand] = {}

    def on_assign(self, committed: list[TopicPartition]) -> None:
        """Read the markers of newly assigned partitions: one at the committed offset is a crash."""
        for tp in committed:
            found = _read_marker(tp.metadata)
            if found is not None and tp.offset == found.first:
                self._crashed[tp.topic, tp.partition] = InHand(found.first, found.last, found.crashes + 1)

    def crashes_at(self, message: Message) -> int:
        """How many workers died with this message in hand (0: it is not known to be in a crash)."""
        topic, partition, offset = position(message)
        found = self._crashed.get((topic, partition))
        if found is None or not found.first <= offset <= found.last:
            return 0
        return found.crashes

    def markers(self, messages: list[Message], crashes: int = 0) -> list[TopicPartition]:
        """The commits that mark these messages as in hand, one per partition at its first offset."""
        ranges: dict[tuple[str, int], tuple[int, int]] = {}
        for message in messages:
            topic, partition, offset = position(message)
            first, last = ranges.get((topic, partition), (offset, offset))
            ranges[topic, partition] = (min(first, offset), max(last, offset))
        return [
            TopicPartition(topic, partition, first, InHand(first, last, crashes).marker())
            for (topic, partition), (first, last) in ranges.items()
        ]

    def passed(self, message: Message) -> None:
        """A message of a crashed range went through (or was dead-lettered): forget what is behind it."""
        topic, partition, offset = position(message)
        found = self._crashed.get((topic, partition))
        if found is not None and offset >= found.last:
            del self._crashed[topic, partition]
