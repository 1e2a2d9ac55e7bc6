"""Dead letters of a Kafka deployment requeued once their cause is fixed: every alert gets through."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from confluent_kafka import Producer

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.core.component import ComponentConfig, Filter
from starling.core.registry import register_component
from starling.core.spec import ComponentSpec
from starling.transport.kafka.clients import ensure_topics, producer_config
from starling.transport.kafka.deadletters import requeue_dead_letters
from starling.transport.kafka.envelope import decode_envelope
from starling.transport.kafka.feed import feed
from starling.transport.kafka.worker import StageWorker
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, read_topic

pytestmark = pytest.mark.kafka


class _Config(ComponentConfig):
    pass


class FlakyFilter(Filter[_Config]):
    Config: ClassVar[type[ComponentConfig]] = _Config
    broken: ClassVar[bool] = True

    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        if FlakyFilter.broken and any(a.alert_id % 3 == 0 for a in alerts):
            raise RuntimeError("a bug in the filter")
        return [True] * len(alerts)


def _run_until(worker: StageWorker, done: Callable[[StageWorker], bool], what: str) -> None:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: done(worker), 120, what)
    finally:
        worker.stop()
        thread.join(timeout=60)


def test_requeued_dead_letters_go_through_once_fixed(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    register_component("test-flaky-filter", FlakyFilter)
    alerts = 300
    spec = chain_spec(kafka_bootstrap, prefix, alerts).with_kind(
        "filters", [ComponentSpec(use="test-flaky-filter", name="flaky")]
    )
    feed(spec)
    _run_until(StageWorker(spec, "ingest", tmp_path), lambda w: w.stats.messages_in >= alerts, "ingest")
    first = StageWorker(spec, "filter", tmp_path)
    _run_until(first, lambda w: w.stats.messages_in >= alerts, "the broken filter stage")
    refused = len(first.dead_letters)
    assert 0 < refused < alerts

    FlakyFilter.broken = False  # the fix
    try:
        # A dead letter keeps the survey's original message: it goes back to the survey's topic.
        counts = requeue_dead_letters(spec.kafka, idle_s=3.0)
        assert counts == {spec.kafka.raw_topic: refused}
        ingest = StageWorker(spec, "ingest", tmp_path)
        _run_until(ingest, lambda w: w.stats.messages_in >= refused, "ingest of the requeued letters")
        again = StageWorker(spec, "filter", tmp_path)
        _run_until(again, lambda w: w.stats.messages_in >= refused, "the requeued letters")
    finally:
        FlakyFilter.broken = True
    decoder = AlertDecoder()
    passed = {
        decode_envelope(m.value(), decoder).alert.alert_id
        for m in read_topic(kafka_bootstrap, spec.kafka.topic("filtered"), alerts)
    }
    assert len(passed) == alerts
    assert requeue_dead_letters(spec.kafka, idle_s=2.0) == {}  # each letter is requeued once


def test_a_requeue_run_stops_at_the_letters_it_found_while_new_ones_keep_coming(
    kafka_bootstrap: str, prefix: str
) -> None:
    """A cause not fixed yet refuses the requeued letters again as the run goes on: the run takes the
    letters that were there when it began, and leaves the new ones for the next run."""
    settings = chain_spec(kafka_bootstrap, prefix, 0).kafka
    ensure_topics(settings, [settings.dead_letter_topic, settings.raw_topic])
    producer = Producer(producer_config(settings))
    origin = [("origin", f"{settings.raw_topic}/0@1".encode())]
    for i in range(50):
        producer.produce(settings.dead_letter_topic, value=f"old-{i}".encode(), headers=origin)
    producer.flush(30)
    stop = threading.Event()

    def refused_again() -> None:  # what a still-broken chain would do with each requeued letter
        while not stop.is_set():
            producer.produce(settings.dead_letter_topic, value=b"new", headers=origin)
            producer.poll(0)
            stop.wait(0.05)

    thread = threading.Thread(target=refused_again, daemon=True)
    thread.start()
    try:
        counts = requeue_dead_letters(settings, idle_s=30.0)  # idle never comes: new letters keep coming
        assert thread.is_alive()  # the run ended while letters were still coming
    finally:
        stop.set()
        thread.join(timeout=10)
        producer.flush(30)
    requeued = [m.value() for m in read_topic(kafka_bootstrap, settings.raw_topic, 50)]
    assert sorted(v for v in requeued if v != b"new") == sorted(f"old-{i}".encode() for i in range(50))
    # A few new letters may have come before the run read where to stop; never the stream of them.
    assert counts[settings.raw_topic] == len(requeued) < 60
    later = requeue_dead_letters(settings, idle_s=2.0)
    assert later[settings.raw_topic] > 0  # the new ones, in the next run
