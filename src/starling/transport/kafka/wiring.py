"""A running stage rewired in place: its place in the chain changed without a restart.

A reshape (``starling.control.reshape``) changes which topic a stage reads, which it writes and which
components it runs. Restarting the stage's processes for that would stall the output for seconds (Python
starting, a consumer group joined anew). Instead the controller pauses the stage at a batch boundary
(everything it took is committed), then hands each replica its *wiring*: the new pipeline, its version,
and where to begin on each partition of its input (the *start*). The replica applies it between two
batches and goes on. A stage a reshape adds is started held (``starling serve --held``): it joins its
group but takes nothing until its wiring comes.

The start is kept after the wiring: a partition this replica is given later (a rebalance) begins at its
start or at what the group committed, whichever is later, and a start past the committed offset is
committed at once, so a replica started from the pipeline file later begins there too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from starling.core.kafka_settings import KafkaSettings
from starling.core.live import LiveRuntime
from starling.core.spec import PipelineSpec
from starling.core.stages import StageLayout, stage_layout, stage_names
from starling.errors import ConfigError
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.offsets import rewind

log = logging.getLogger("starling.worker")

Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class Wiring:
    """What the controller gives a replica at a reshape: the pipeline of ``pipeline_version``, and where
    the stage begins on its input."""

    spec: PipelineSpec
    pipeline_version: int
    start: Offsets


def parse_start(start: dict[str, int]) -> Offsets:
    """``{"topic/partition": offset}`` (a topic name has no ``/``) as offsets; ConfigError if malformed."""
    offsets: Offsets = {}
    for key, offset in start.items():
        topic, _, partition = key.rpartition("/")
        if not topic or not partition.isdigit() or offset < 0:
            raise ConfigError(f"start {key!r}: {offset} is not 'topic/partition': offset")
        offsets[topic, int(partition)] = offset
    return offsets


def format_start(offsets: Offsets) -> dict[str, int]:
    return {f"{topic}/{partition}": offset for (topic, partition), offset in sorted(offsets.items())}


def begin_at(
    consumer: Consumer, partitions: list[TopicPartition], committed: list[TopicPartition], start: Offsets
) -> Offsets:
    """Set each of ``partitions`` (given to this replica, not yet assigned) to begin at its start where
    that is past what the group ``committed``, and commit those starts. Returns the offsets committed."""
    behind: Offsets = {}
    for tp in committed:
        begin = start.get((tp.topic, tp.partition))
        if begin is not None and (tp.offset < 0 or tp.offset < begin):
            behind[tp.topic, tp.partition] = begin
    for tp in partitions:
        if (tp.topic, tp.partition) in behind:
            tp.offset = behind[tp.topic, tp.partition]
    if behind:
        try:
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in sorted(behind.items())], asynchronous=False
            )
        except KafkaException as exc:  # the first batch's commit moves the group there anyway
            log.info("could not commit the starts %s: %s", behind, exc)
            return {}
    return behind


def seek_to_starts(consumer: Consumer, assigned: list[tuple[str, int]], start: Offsets) -> Offsets:
    """For partitions already assigned (a stage whose input did not change): move those behind their
    start to it, and commit that. Returns the offsets committed."""
    if not assigned or not start:
        return {}
    tps = [TopicPartition(t, p) for t, p in assigned]
    committed = consumer.committed(tps, timeout=10.0)
    moved = begin_at(consumer, tps, committed, start)
    for (topic, partition), offset in moved.items():
        consumer.seek(TopicPartition(topic, partition, offset))
    return moved


class RewirableStage(LiveRuntime):
    """The part of a stage worker (``starling.transport.kafka.worker``) that holds and rewires it."""

    layout: StageLayout
    settings: KafkaSettings
    assigned: list[tuple[str, int]]
    _committed: Offsets
    _wiring: Wiring | None
    _start: Offsets
    _holding: threading.Event

    def _consumer(self) -> Consumer:
        raise NotImplementedError

    def _subscribe(self) -> None:
        raise NotImplementedError

    def _hold(self) -> list[Message]:
        """Paused at a batch boundary: poll (to keep the group membership) until resumed, drained,
        stopped or rewired. A message still handed over (fetched before the pause) is held for after,
        never dropped; a wiring drops them, as it seeks every partition to where it begins."""
        self._consumer().pause([TopicPartition(t, p) for t, p in self.assigned])
        held: list[Message] = []
        self._holding.set()
        try:
            while self._paused.is_set() and not self._stop.is_set() and not self._draining.is_set():
                message = self._consumer().poll(0.2)
                if message is not None and message.error() is None:
                    held.append(message)
                with self._config_lock:
                    wiring, self._wiring = self._wiring, None
                if wiring is not None:
                    assigned = set(self.assigned)  # (a message of a partition revoked meanwhile is not ours)
                    rewind(self._consumer(), [m for m in held if (m.topic(), m.partition()) in assigned])
                    held = []
                    self._apply_wiring(wiring)
                    self._paused.clear()
        finally:
            with self._config_lock:  # a wiring that comes now is refused, never kept for a later pause
                self._holding.clear()
                self._wiring = None
        self._consumer().resume([TopicPartition(t, p) for t, p in self.assigned])
        return held

    @property
    def holding(self) -> bool:
        return self._holding.is_set()

    def rewire(self, spec: PipelineSpec, pipeline_version: int, start: dict[str, int]) -> None:
        """Take this stage's place in ``spec`` (``starling.transport.kafka.wiring``), beginning at ``start``
        (``{"topic/partition": offset}``). Only while it holds: its components are validated now
        (ConfigError), and all of it is applied together at the pause's batch boundary."""
        if not self._holding.is_set():
            raise ConfigError(f"{self.stage} is not holding: pause it and wait until its status says so")
        if self.stage not in stage_names(spec):
            raise ConfigError(f"the pipeline given has no stage {self.stage!r}")
        offsets = parse_start(start)
        self.propose_components(spec.stage(self.stage).components, pipeline_version)
        with self._config_lock:
            if not self._holding.is_set():  # the hold ended meanwhile: nothing of it may apply later
                self._pending = None
                raise ConfigError(f"{self.stage} stopped holding before its wiring came")
            self._wiring = Wiring(spec, pipeline_version, offsets)

    def _apply_wiring(self, wiring: Wiring) -> None:
        self._apply_pending()
        before = self.layout
        self.spec, self.layout, self._start = wiring.spec, stage_layout(wiring.spec, self.stage), wiring.start
        ensure_topics(self.settings, [t for t in (self.layout.output_topic,) if t])
        if self.layout.input_topics != before.input_topics:
            # A new input: leave the group's old subscription and join with the new one; each partition
            # given then begins at its start (``_on_assign``).
            self._consumer().close()
            self.assigned = []
            self._subscribe()
        else:
            self._committed.update(seek_to_starts(self._consumer(), self.assigned, self._start))
        log.info("%s: rewired at pipeline version %d: %s", self.stage, wiring.pipeline_version, self.layout)
