"""A topic Kafka refuses costs only the filters that write to it: the ``deliver`` sink, which serves
every user's filters, is set up all the same and delivers everyone else's matches (its setup raised,
and the distribute stage stopped, restarted with the same routes and stopped again). Real Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starling.components.sinks.deliver.sink import DeliverConfig, DeliverSink
from starling.core.component import Batch, RunContext
from starling.core.kafka_settings import KafkaSettings
from starling.transport.kafka.clients import ensure_topics
from tests.support.helpers import synthetic_alerts
from tests.support.kafka import read_topic

pytestmark = pytest.mark.kafka


def test_a_topic_kafka_refuses_costs_only_its_filters(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    taken = f"{prefix}.user.ada.x_f"
    ensure_topics(kafka, [taken])  # a filter's topic already there
    colliding, good = f"{prefix}.user.ada_x.f", f"{prefix}.user.bob.g"  # '.' and '_' are one to Kafka
    routes = {
        "ada_x.f": [{"type": "kafka", "topic": colliding, "format": "json"}],
        "bob.g": [{"type": "kafka", "topic": good, "format": "json"}],
        "cyd.h": [{"type": "kafka", "topic": "..", "format": "json"}],  # a name Kafka never takes
    }
    sink = DeliverSink(DeliverConfig.model_validate({"routes": routes}), "deliver")
    sink.setup(RunContext(output_dir=tmp_path, kafka=kafka))  # no error
    assert set(sink.refused_topics) == {colliding, ".."}
    assert "collides" in sink.refused_topics[colliding]

    alerts = synthetic_alerts(30)[:5]
    sink.write(Batch(alerts, {name: alerts for name in routes}))
    sink.flush()
    counters = sink.counters()
    sink.close()
    assert counters["delivered"] == {"bob.g": 5}
    assert counters["failed"] == {"ada_x.f": 5, "cyd.h": 5}
    assert set(counters["refused_topics"]) == {colliding, ".."}
    delivered = read_topic(kafka_bootstrap, good, 5, timeout_s=30)
    assert sorted(json.loads(m.value())["alert_id"] for m in delivered) == sorted(a.alert_id for a in alerts)
