"""A stage as a service: consume a batch, run the stage's components, produce, then commit.

Delivery is at least once, end to end. An input offset is committed only after everything produced
from that batch (envelopes for the next stage, dead letters) has been acknowledged by Kafka and the
stage's sinks have flushed. A crash between the two replays the batch; downstream writes are
idempotent (the store's keys; envelopes keyed by object), so a replay adds no duplicate rows.

While the broker is away, the worker keeps trying: the producer retries until its message timeout,
and commits are retried until they succeed or the group has moved on (then the batch is replayed).
Any outage (a schema registry, the store, a disk, Kafka not acknowledging) holds the batch: nothing is
committed or dead-lettered, and after a back-off the consumer goes back to the batch's first offsets.
An envelope too large for Kafka is dead-lettered (its survey message is the reference to it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.core.bodies import BodyResolver
from starling.core.chain import Chain
from starling.core.component import Batch, RawMessage, RunContext
from starling.core.deadletter import DeadLetter
from starling.core.latency import SURVEY, LatencyHistograms
from starling.core.live import build_stage_components
from starling.core.matches import names_by_alert
from starling.core.spec import PipelineSpec
from starling.core.stages import all_topics, stage_component_specs, stage_layout
from starling.errors import AlertDecodeError, OutageError
from starling.transport.kafka.clients import (
    MAX_MESSAGE_BYTES,
    DeliveryTracker,
    consumer_config,
    ensure_topics,
    producer_config,
    start_from,
    survey_time,
)
from starling.transport.kafka.crash_guard import CRASHES_BEFORE_DEAD_LETTER, CrashGuard
from starling.transport.kafka.deadletters import KafkaDeadLetters
from starling.transport.kafka.envelope import decode_envelope, encode_envelope
from starling.transport.kafka.membership import Membership
from starling.transport.kafka.offsets import commit_after, lag_behind, mark_in_hand, rewind
from starling.transport.kafka.wiring import Offsets, RewirableStage, Wiring, begin_at

log = logging.getLogger("starling.worker")


class StageWorker(RewirableStage):
    """One replica of one stage. ``run`` returns when ``stop()`` is called (after a clean commit)."""

    def __init__(
        self,
        spec: PipelineSpec,
        stage: str,
        output_dir: Path,
        decoder: AlertDecoder | None = None,
        bodies: BodyResolver | None = None,
        held: bool = False,
    ):
        self.bodies = bodies or BodyResolver()
        self.spec = spec
        self.stage = stage
        self.layout = stage_layout(spec, stage)
        self.output_dir = output_dir
        self.decoder = decoder or AlertDecoder()
        self.settings = spec.kafka
        self.tracker = DeliveryTracker()
        self.producer = Producer(producer_config(self.settings))
        self.dead_letters = KafkaDeadLetters(self.producer, self.settings.dead_letter_topic, self.tracker)
        specs = stage_component_specs(spec, stage)
        self.chain = Chain(build_stage_components(spec.stage(stage), self.bodies.resolve), self.dead_letters)
        self.init_live(specs)
        self.consumer: Consumer | None = None
        self.batches = 0
        self.last_batch_at: float | None = None
        self.assigned: list[tuple[str, int]] = []
        self._lag: int | None = None
        # The group's offset on each partition (at assignment, then each commit): an unread one's lag from it.
        self._committed: dict[tuple[str, int], int] = {}
        self.crash_guard = CrashGuard()
        self.membership = Membership()
        self.latency = LatencyHistograms()
        self._times: dict[int, dict[str, float]] = {}
        # The reshape's wiring waiting for the batch boundary, the starts it gave, and whether the loop
        # holds (paused at a boundary, everything it took committed).
        self._wiring: Wiring | None = None
        self._start: Offsets = {}
        self._holding = threading.Event()
        if held:  # a stage a reshape is about to add: it takes nothing until its wiring comes
            self._paused.set()

    def lag(self) -> int | None:
        """Messages behind the end of the assigned partitions, as of the last poll (None before)."""
        return self._lag

    def _update_lag(self) -> None:
        """Called on the consumer's own thread (``offsets.lag_behind``: no I/O)."""
        consumer = self.consumer
        if consumer is None or not self.assigned:
            self._lag = None if consumer is None else 0
            return
        with contextlib.suppress(KafkaException, RuntimeError):
            self._lag = lag_behind(consumer, self.assigned, self._committed)

    # -- the loop ----------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.membership.assigned()
        start = start_from(self.settings, self.layout.decodes_survey_messages)
        if isinstance(start, int):
            # A new group starts at a point in time; a group that has committed resumes where it was.
            committed = consumer.committed(partitions, timeout=10.0)
            fresh = [
                TopicPartition(tp.topic, tp.partition, start)
                for tp in committed
                if tp.offset == OFFSET_INVALID
            ]
            if fresh:
                for tp in consumer.offsets_for_times(fresh, timeout=10.0):
                    for original in partitions:
                        if (original.topic, original.partition) == (tp.topic, tp.partition):
                            original.offset = tp.offset
        try:
            committed = consumer.committed(partitions, timeout=10.0)
            self.crash_guard.on_assign(committed)
            for tp in committed:
                if tp.offset >= 0:
                    self._committed[tp.topic, tp.partition] = tp.offset
            self._committed.update(begin_at(consumer, partitions, committed, self._start))
        except KafkaException:
            # The lag of these partitions is counted from their start until the first commit; a partition
            # with a start (a reshape's) begins there, rather than where a group with nothing committed would.
            for tp in partitions:
                tp.offset = self._start.get((tp.topic, tp.partition), tp.offset)
        consumer.incremental_assign(partitions)
        if self._paused.is_set():  # a partition given to a paused worker stays paused
            consumer.pause(partitions)
        self.assigned.extend((tp.topic, tp.partition) for tp in partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.assigned = [tp for tp in self.assigned if tp not in gone]

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(consumer, partitions)
        self.membership.lost()

    def _subscribe(self) -> None:
        reads_survey = self.layout.decodes_survey_messages
        self.consumer = Consumer(consumer_config(self.settings, self.stage, reads_survey))
        self.consumer.subscribe(
            self.layout.input_topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _rejoin_if_stuck(self) -> None:
        """A member that lost its group and stays out of it is made anew (``membership``)."""
        if self.consumer is not None and self.membership.stuck():
            log.warning("%s: out of its consumer group for over a minute; subscribing anew", self.stage)
            self.consumer.close()
            self._subscribe()
            self.membership.resubscribed()

    def run(self, on_batch: Callable[[StageWorker], None] | None = None) -> None:
        ensure_topics(self.settings, all_topics(self.spec))
        for component in self.chain.components:
            component.setup(RunContext(output_dir=self.output_dir, kafka=self.spec.kafka))
        self._subscribe()
        self._ready.set()
        try:
            while not self._stop.is_set() and not self._draining.is_set():
                self._apply_pending()
                held = self._hold() if self._paused.is_set() else []
                if self._stop.is_set() or self._draining.is_set():
                    break
                wait_s = self.settings.batch_wait_ms / 1000  # at low rates, what each stage adds to latency
                asked, behind = time.perf_counter(), self._lag or 0
                fetched = self._consumer().consume(self.spec.batch_size, wait_s)
                if behind >= self.spec.batch_size:  # a whole batch waited on the broker: this was its fetch
                    self.stats.fetch_wait_s += time.perf_counter() - asked
                messages = held + fetched
                if messages:
                    self.process(messages)
                    if on_batch is not None:
                        on_batch(self)
                self._update_lag()
                self._rejoin_if_stuck()
        finally:
            for component in self.chain.components:
                component.flush()
                component.close()
            self.producer.flush(30)
            self._consumer().close()
            if self._draining.is_set():
                self._drained.set()

    def process(self, messages: list[Message]) -> None:
        """One batch: run the components, produce, wait for acknowledgements, then commit."""
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error on %s: %s", self.stage, error.str())
        if not good:
            return
        if any(self.crash_guard.crashes_at(m) for m in good):
            self._process_one_by_one(good)
            return
        if mark_in_hand(self._consumer(), self.crash_guard.markers(good), self.stage):
            self._process_batch(good)
        else:
            rewind(self._consumer(), good)

    def _process_batch(self, good: list[Message]) -> bool:
        """Run, produce, wait for Kafka, commit; False if an outage sent the batch back to be taken again."""
        started, began = time.thread_time(), time.perf_counter()
        try:
            with self.chain.batch():
                batch, payloads = self._batch(good)
                batch = self.chain.run(batch, payloads)
                if self.layout.output_topic is not None:
                    self._produce(batch, payloads)
                self.chain.release_dead_letters()
                acknowledged_in = self._wait_for_acknowledgements()
        except OutageError as exc:
            self._wait_and_take_again(good, exc)
            return False
        self.backoff.clear()
        self._commit(good)
        self.stats.cpu_s += time.thread_time() - started
        self.stats.busy_s += time.perf_counter() - began
        self.stats.ack_wait_s += acknowledged_in  # a part of busy_s
        if self.layout.output_topic is None:  # the last stage: its alerts are delivered now
            self.latency.delivered(self.stage, batch.alerts, self._times, time.time())
        self.batches += 1
        self.last_batch_at = time.time()
        return True

    def _process_one_by_one(self, messages: list[Message]) -> None:
        """A worker died with some of these in hand: each is marked and taken alone, so the next crash
        names one message; a message in hand at two crashes is dead-lettered and passed."""
        for message in messages:
            crashes = self.crash_guard.crashes_at(message)
            if crashes >= CRASHES_BEFORE_DEAD_LETTER:
                self._dead_letter_crasher(message, crashes)
            else:
                if not mark_in_hand(
                    self._consumer(), self.crash_guard.markers([message], crashes), self.stage
                ):
                    rewind(self._consumer(), [message])
                    return  # the group is rebalancing: this message may be another member's now
                if not self._process_batch([message]):
                    return  # an outage: the consumer goes back to this message, and on from there
            self.crash_guard.passed(message)

    def _dead_letter_crasher(self, message: Message, crashes: int) -> None:
        origin = f"{message.topic()}/{message.partition()}@{message.offset()}"
        reason = (
            f"the {self.stage} worker died {crashes} times with this message in hand (a crash, not an error)"
        )
        log.error("%s: %s: %s; dead-lettered", self.stage, origin, reason)
        self.dead_letters.add(DeadLetter(origin, self.stage, "worker", reason, message.value() or b""))
        self._wait_for_acknowledgements()
        self._commit([message])

    def _wait_and_take_again(self, messages: list[Message], outage: OutageError) -> None:
        """An outage: nothing is dead-lettered or committed; after a back-off (1 s, 2 s, 4 s ... 30 s)
        the consumer goes back to the batch's first offsets and takes it again."""
        rewind(self._consumer(), messages)
        self.backoff.wait(outage, self._stop, self.stage)

    def _batch(self, messages: list[Message]) -> tuple[Batch, dict[int, RawMessage]]:
        raw = [RawMessage(m.value() or b"", f"{m.topic()}/{m.partition()}@{m.offset()}") for m in messages]
        self._times = {}
        stamp = self._stamp()
        if self.layout.decodes_survey_messages:
            decoded, from_messages = self.chain.decode(raw, self.decoder)
            put_on_kafka = {r.origin: survey_time(m) for r, m in zip(raw, messages, strict=True)}
            for alert in decoded:
                alert.passed = dict(stamp)
                if (at := put_on_kafka.get(from_messages[id(alert)].origin)) is not None:
                    self._times[id(alert)] = {SURVEY: at}
            return Batch(decoded), from_messages
        decode_counts = self.stats.stages["decode"]
        alerts: list[Alert] = []
        payloads: dict[int, RawMessage] = {}
        matches: dict[str, list[Alert]] = {}
        for message in raw:
            self.stats.messages_in += 1
            decode_counts.alerts_in += 1
            try:
                envelope = decode_envelope(message.payload, self.decoder)
            except AlertDecodeError as exc:
                decode_counts.failed += 1
                self.chain.dead_letter(
                    DeadLetter(message.origin, "decode", "envelope", exc.reason, message.payload)
                )
                continue
            alerts.append(envelope.alert)
            payloads[id(envelope.alert)] = RawMessage(envelope.payload, envelope.alert.origin)
            envelope.alert.passed = {**envelope.provenance, **stamp}
            self._times[id(envelope.alert)] = envelope.times
            for name in envelope.matches:
                matches.setdefault(name, []).append(envelope.alert)
        decode_counts.alerts_out += len(alerts)
        self.stats.alerts_decoded += len(alerts)
        return Batch(alerts, dict(matches.items())), payloads

    def _stamp(self) -> dict[str, int]:
        """What this stage adds to an alert's provenance: this replica's own configuration version, and
        the controller's pipeline version it runs (the same in every replica: what tells that a change
        made at that version, a stage inserted or removed among them, judged this alert)."""
        stamp = {self.stage: self.config_version}
        if self.applied_pipeline_version is not None:
            stamp[f"{self.stage}.pipeline"] = self.applied_pipeline_version
        return stamp

    def _produce(self, batch: Batch, payloads: dict[int, RawMessage]) -> None:
        assert self.layout.output_topic is not None
        done = time.time()
        for alert, matched in zip(batch.alerts, names_by_alert(batch.alerts, batch.matches), strict=True):
            payload = payloads[id(alert)].payload
            times = {**self._times.get(id(alert), {}), self.stage: done}
            value = encode_envelope(alert, payload, matched, alert.passed, times)
            if len(value) > MAX_MESSAGE_BYTES:
                self._dead_letter_oversized(alert, payloads[id(alert)], len(value))
                continue
            while True:
                try:
                    # Keyed by object: one object's alerts stay in order on one partition.
                    self.producer.produce(
                        self.layout.output_topic,
                        key=alert.object_id.encode(),
                        value=value,
                        on_delivery=self.tracker.callback,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain, then retry
                    self.producer.poll(0.5)
            self.producer.poll(0)

    def _dead_letter_oversized(self, alert: Alert, message: RawMessage, size: int) -> None:
        reason = (
            f"envelope of alert {alert.alert_id} is {size} bytes, over Kafka's message limit of "
            f"{MAX_MESSAGE_BYTES} bytes; the survey message is kept as its reference"
        )
        self.chain.dead_letter(DeadLetter(message.origin, self.stage, "envelope", reason, message.payload))

    def _wait_for_acknowledgements(self) -> float:
        """Until Kafka has acknowledged everything produced; the seconds it took."""
        asked = time.perf_counter()
        while self.producer.flush(1.0) > 0:
            log.info("%s: waiting for Kafka to acknowledge %d messages", self.stage, len(self.producer))
        self.tracker.raise_if_failed()
        return time.perf_counter() - asked

    def _commit(self, messages: list[Message]) -> None:
        self._committed.update(commit_after(self._consumer(), messages, self.stage))

    def _consumer(self) -> Consumer:
        assert self.consumer is not None
        return self.consumer

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "batches": self.batches,
            "last_batch_at": self.last_batch_at,
            "assigned_partitions": [f"{t}/{p}" for t, p in sorted(self.assigned)],
            "input_topics": self.layout.input_topics,
            "output_topic": self.layout.output_topic,
            "holding": self._holding.is_set(),
            "latency": self.latency.summary(),
        }
