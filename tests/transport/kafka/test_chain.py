"""The chain over a real Kafka: every alert stored once, poison to the dead-letter topic, faults survived."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from starling.alert.decoder import AlertDecoder
from starling.control.backends.processes import LocalChain
from starling.store.open import open_store
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.feed import feed
from tests.support.helpers import wait_until
from tests.support.kafka import EXTERNAL_BOOTSTRAP, chain_spec, kafka_script, store_count

pytestmark = pytest.mark.kafka


def _expected(alerts: int, seed: int = 42) -> tuple[set[int], set[int]]:
    """Alert ids, and those brighter than 19 mag, decoded here from the very messages the chain gets."""
    decoder = AlertDecoder()
    night = SyntheticNight(SyntheticConfig(alerts=alerts, alerts_per_visit=200, seed=seed))
    decoded = [decoder.decode(payload, origin)[0] for origin, payload in night]
    return {a.alert_id for a in decoded}, {a.alert_id for a in decoded if a.mag is not None and a.mag < 19.0}


def _stored_ids(output: Path, sql: str) -> list[int]:
    store = open_store(output / "starling.db")
    try:
        return [int(next(iter(row.values()))) for row in store.query(sql)]
    finally:
        store.close()


def _assert_exactly_once(output: Path, alerts: int) -> None:
    all_ids, bright = _expected(alerts)
    stored = _stored_ids(output, "SELECT alert_id FROM alerts")
    assert len(stored) == len(set(stored)) == alerts
    assert set(stored) == all_ids
    matched = _stored_ids(output, "SELECT alert_id FROM filter_matches WHERE filter = 'bright'")
    assert sorted(matched) == sorted(bright)
    annotated = _stored_ids(output, "SELECT alert_id FROM annotations WHERE annotator = 'history-summary'")
    assert sorted(annotated) == sorted(all_ids)


def _assert_waits_counted(chain: LocalChain) -> None:
    """Where a replica's time goes besides its work: ingest and filter produce, so they waited for Kafka's
    acknowledgements; the waits are within the seconds its batches took, and are exported."""
    for stage in ("ingest", "filter"):
        [status] = chain.statuses(stage)
        waits = status["waits_s"]
        assert 0 < waits["acknowledgements"] <= status["busy_s"], status
    worker = chain.worker("ingest")
    text = httpx.get(f"{worker.base_url}/metrics", headers={"Authorization": f"Bearer {chain.token}"}).text
    assert 'starling_stage_wait_seconds_total{on="acknowledgements",stage="ingest"}' in text


def _assert_latency_known(chain: LocalChain, alerts: int) -> None:
    """Every alert delivered has its spans: from its exposure and from its survey's Kafka message to its
    delivery, and one per stage, each in the distribute stage's status and its Prometheus histograms."""
    spans = ("exposure", "survey", "ingest", "filter", "distribute")

    def counted() -> dict[str, int]:
        latency = chain.statuses("distribute")[0]["latency"]
        return {span: latency.get(span, {}).get("count", 0) for span in spans}

    wait_until(lambda: counted() == dict.fromkeys(spans, alerts), 30, "every delivered alert's spans")
    latency = chain.statuses("distribute")[0]["latency"]
    # A local chain: the stream's delivery takes seconds, not the minutes a bucket past 10 s would mean.
    assert latency["survey"]["p50_s"] <= 30
    worker = chain.worker("distribute")
    text = httpx.get(f"{worker.base_url}/metrics", headers={"Authorization": f"Bearer {chain.token}"}).text
    for span in spans:
        assert f'starling_alert_latency_seconds_count{{span="{span}",stage="distribute"}} {alerts}.0' in text


def test_three_stage_chain_stores_every_alert_once_and_dead_letters_poison(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 1500
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        poison = {
            b"\x07garbage": "wrong magic byte 0x07",
            b"\x00\x00\x00\x10\x99" + b"x" * 20: "unknown schema id 4249",
        }
        for value in poison:  # first, so they sit in front of good alerts on their partitions
            producer.produce(spec.kafka.raw_topic, value=value, partition=0)
        producer.flush(30)
        sent = feed(spec)
        assert sent == alerts
        chain.wait_for(alerts + len(poison), timeout_s=180)
        _assert_exactly_once(tmp_path, alerts)
        [ingest] = chain.statuses("ingest")
        assert ingest["components"]["decode"]["failed"] == len(poison)
        _assert_latency_known(chain, alerts)
        _assert_waits_counted(chain)
    finally:
        chain.stop()

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{prefix}-dlq-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([spec.kafka.dead_letter_topic])
    letters: dict[bytes, str] = {}
    deadline = time.monotonic() + 30
    while len(letters) < len(poison) and time.monotonic() < deadline:
        for message in consumer.consume(10, 1.0):
            if message.error() is None:
                headers = dict(message.headers() or [])
                letters[message.value()] = headers["reason"].decode()
    consumer.close()
    assert set(letters) == set(poison)
    for value, words in poison.items():
        assert words in letters[value]


def test_kill_9_of_workers_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 4000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 800.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 800, 120, "a first part of the stream to be stored")
        chain.kill("filter", sig=signal.SIGKILL)
        time.sleep(1.0)
        chain.start_worker("filter", 0)
        wait_until(lambda: store_count(tmp_path) > 2200, 120, "more of the stream after the filter restart")
        chain.kill("distribute", sig=signal.SIGKILL)
        time.sleep(1.0)
        chain.start_worker("distribute", 0)
        feeder.join(timeout=120)
        wait_until(
            lambda: store_count(tmp_path) >= alerts and store_count(tmp_path, "filter_matches") > 0,
            180,
            "every alert in the store",
        )
        wait_until(
            lambda: all(s["lag"] == 0 for s in chain.statuses("distribute")), 60, "distribute to catch up"
        )
        _assert_exactly_once(tmp_path, alerts)
    finally:
        chain.stop()


def test_broker_restart_mid_stream(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    if EXTERNAL_BOOTSTRAP:
        pytest.skip("an external Kafka cannot be restarted by the tests")
    alerts = 3000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        feed(spec, limit=1500)
        wait_until(lambda: store_count(tmp_path) > 300, 120, "the stream to start flowing")
        assert kafka_script("stop").returncode == 0
        time.sleep(3.0)
        assert kafka_script("start").returncode == 0
        # The whole night goes in again after the restart: the workers must have reconnected to take
        # it, and the first 1500, now seen twice, must not make duplicate rows.
        feed(spec)
        wait_until(lambda: store_count(tmp_path) >= alerts, 240, "every alert in the store after the restart")
        assert all(w.alive for w in chain.workers), "a worker died while the broker was away"
        _assert_exactly_once(tmp_path, alerts)
    finally:
        chain.stop()


def test_two_replicas_share_the_partitions(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    alerts = 2000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path, replicas={"ingest": 2})
    try:
        chain.start()
        feed(spec)
        chain.wait_for(alerts, timeout_s=180)
        statuses = chain.statuses("ingest")
        assert len(statuses) == 2
        owned = [set(s["assigned_partitions"]) for s in statuses]
        assert not owned[0] & owned[1]
        assert owned[0] | owned[1] == {f"{spec.kafka.raw_topic}/{p}" for p in range(4)}
        assert all(s["messages_in"] > 0 for s in statuses)
        assert sum(s["messages_in"] for s in statuses) >= alerts
        _assert_exactly_once(tmp_path, alerts)
    finally:
        chain.stop()


def test_pause_holds_the_stream_and_resume_loses_nothing(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 1000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        assert chain.worker("filter").post("/pause") == {"state": "paused"}
        feed(spec)
        wait_until(
            lambda: sum(s["messages_in"] for s in chain.statuses("ingest")) >= alerts,
            120,
            "ingest to take all",
        )
        time.sleep(2.0)
        assert store_count(tmp_path) == 0, "nothing passes a paused stage"
        [paused] = chain.statuses("filter")
        assert paused["state"] == "paused"
        assert chain.worker("filter").post("/resume") == {"state": "running"}
        chain.wait_for(alerts, timeout_s=120)
        _assert_exactly_once(tmp_path, alerts)
    finally:
        chain.stop()


def _messages_on(spec_topic: str, bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "count-only"})
    try:
        partitions = consumer.list_topics(spec_topic, timeout=10).topics[spec_topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(spec_topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def test_sigterm_drains_a_replica_so_nothing_is_processed_twice(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    """What a Kubernetes scale-down does to a pod: SIGTERM. The replica finishes its batch, commits and
    leaves with exit code 0; the other takes over from the commit: each alert is ingested and stored once."""
    alerts = 6000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path, replicas={"ingest": 2})
    try:
        chain.start()
        feed(spec)  # all at once: both replicas always hold a batch in hand
        wait_until(lambda: store_count(tmp_path) > 1000, 120, "a first part of the stream to be stored")
        leaving = chain.worker("ingest", 1)
        leaving.process.send_signal(signal.SIGTERM)
        assert leaving.process.wait(timeout=60) == 0  # within the pods' grace period
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "every alert in the store")
        assert _messages_on(spec.kafka.topic("ingested"), kafka_bootstrap) == alerts
        _assert_exactly_once(tmp_path, alerts)
    finally:
        chain.stop()
