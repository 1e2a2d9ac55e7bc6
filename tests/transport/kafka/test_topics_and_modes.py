"""Survey topics by pattern, start from a time, topic management, and one description for both runtimes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from starling.control.backends.processes import LocalChain
from starling.core.component import RawMessage
from starling.core.embedded import EmbeddedPipeline
from starling.core.kafka_settings import KafkaSettings
from starling.store.open import open_store
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.feed import feed
from tests.support.helpers import dump_store, wait_until
from tests.support.kafka import chain_spec, read_topic

pytestmark = pytest.mark.kafka


def test_the_same_description_gives_the_same_rows_embedded_and_over_kafka(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    spec = chain_spec(kafka_bootstrap, prefix, 800)
    EmbeddedPipeline(spec, tmp_path / "embedded").run()
    chain = LocalChain(spec, tmp_path / "kafka")
    try:
        chain.start()
        feed(spec)
        chain.wait_for(800, timeout_s=120)
    finally:
        chain.stop()
    embedded, over_kafka = (
        dump_store(tmp_path / "embedded" / "starling.db"),
        dump_store(tmp_path / "kafka" / "starling.db"),
    )
    assert len(embedded["alerts"]) == 800
    assert embedded == over_kafka


def test_ztf_topics_by_pattern_from_a_point_in_time(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    """The ingest stage reads ztf_YYYYMMDD_programidN topics by regex and starts at a given time."""
    night = [payload for _, payload in SyntheticNight(SyntheticConfig(alerts=400, surveys=("ztf",), seed=4))]
    topic = f"ztf_20261122_programid1_{prefix}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    ensure_topics(settings, [topic])
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for value in night[:150]:  # before the start time: must be skipped
        producer.produce(topic, value=value)
    producer.flush(30)
    time.sleep(1.5)
    start_ms = int(time.time() * 1000)
    time.sleep(0.5)
    for value in night[150:]:
        producer.produce(topic, value=value)
    producer.flush(30)

    spec = chain_spec(kafka_bootstrap, prefix, 1).model_copy(
        update={
            "kafka": settings.model_copy(
                update={"input_topics": [f"^ztf_20261122_programid1_{prefix}$"], "start_from": start_ms}
            )
        }
    )
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        chain.wait_for(250, timeout_s=120)
        time.sleep(1.0)
        [ingest] = chain.statuses("ingest")
        assert ingest["messages_in"] == 250
        store = open_store(tmp_path / "starling.db")
        try:
            assert store.count("alerts") == 250
            assert {row["survey"] for row in store.query("SELECT DISTINCT survey FROM alerts")} == {"ztf"}
        finally:
            store.close()
    finally:
        chain.stop()


def test_topics_are_created_with_partitions_and_retention(kafka_bootstrap: str, prefix: str) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=3, retention_ms=3_600_000
    )
    ensure_topics(settings, [settings.topic("ingested"), settings.topic("filtered")])
    ensure_topics(settings, [settings.topic("ingested")])  # idempotent
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    names = (settings.topic("ingested"), settings.topic("filtered"))
    # A topic just made is listed a moment later (the broker's metadata follows the controller's).
    wait_until(lambda: set(names) <= set(admin.list_topics(timeout=10).topics), 30, "the new topics listed")
    metadata = admin.list_topics(timeout=10)
    for name in names:
        assert len(metadata.topics[name].partitions) == 3
        resource = ConfigResource("topic", name)
        config = admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["retention.ms"].value == "3600000"


def test_feed_puts_messages_made_beforehand_on_the_raw_topic_as_they_are(
    kafka_bootstrap: str, prefix: str
) -> None:
    spec = chain_spec(kafka_bootstrap, prefix, 5)
    made = [RawMessage(payload, origin) for origin, payload in SyntheticNight(SyntheticConfig(alerts=3))]
    assert feed(spec, messages=made) == 3  # not the spec's source of 5
    found = read_topic(kafka_bootstrap, spec.kafka.raw_topic, 3, timeout_s=30)
    assert sorted(m.value() for m in found) == sorted(m.payload for m in made)
    assert sorted(dict(m.headers())["origin"].decode() for m in found) == sorted(m.origin for m in made)
