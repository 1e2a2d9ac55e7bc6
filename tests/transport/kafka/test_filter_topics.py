"""A filter's own Kafka topic, in Avro (self-describing containers, cutouts included) on the real broker."""

from __future__ import annotations

import io
import time
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer

from starling.assembly import route_deliveries
from starling.core.embedded import EmbeddedPipeline
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec
from tests.support.helpers import synthetic_alerts

pytestmark = pytest.mark.kafka


def test_matches_reach_the_filter_topic_in_avro_with_cutouts(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 400
    spec = route_deliveries(
        PipelineSpec(
            batch_size=100,
            source=ComponentSpec(use="synthetic", config={"alerts": alerts, "alerts_per_visit": 50}),
            filters=[
                ComponentSpec(
                    use="adql",
                    name="bright",
                    config={"expression": "mag < 18.5", "outputs": [{"type": "kafka", "cutouts": True}]},
                )
            ],
            kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix),
        )
    )
    EmbeddedPipeline(spec, tmp_path).run()
    made = synthetic_alerts(alerts, cutouts=True)  # the same night the source makes
    expected = {a.alert_id for a in made if a.mag is not None and a.mag < 18.5}
    assert expected
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"r{time.time_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{prefix}.filter.bright"])
    records = []
    deadline = time.monotonic() + 60
    while len(records) < len(expected) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            assert dict(message.headers())["starling-filter"] == b"bright"
            records.extend(fastavro.reader(io.BytesIO(message.value())))
    consumer.close()
    assert {r["alert_id"] for r in records} == expected
    for record in records:  # ZTF's stamps are gzipped FITS, Rubin's plain FITS
        assert set(record["cutouts"]) == {"science", "template", "difference"}
        assert all(data[:2] in (b"\x1f\x8b", b"SI") for data in record["cutouts"].values())
