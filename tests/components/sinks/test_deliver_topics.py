"""A topic Kafka refuses costs only the filters that write to it: the ``deliver`` sink, which serves
every user's filters, is set up all the same and delivers everyone else's matches (its setup raised,
and the distribute stage stopped, restarted with the same routes and stopped again). Real Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer

from starling.components.sinks.deliver import sink as sink_module
from starling.components.sinks.deliver.sink import DeliverConfig, DeliverSink
from starling.core.component import Batch, RunContext
from starling.core.kafka_settings import KafkaSettings
from starling.errors import KafkaUnavailableError
from starling.transport.kafka.clients import ensure_topics, producer_config
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


def test_matches_kafka_has_not_acknowledged_hold_the_commit(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flush`` raises an outage (the stage keeps the batch and commits nothing) while Kafka has not
    acknowledged every match, instead of letting the offsets be committed with matches in flight: Kafka
    goes away after the sink was set up (its producer now points at a port where no broker listens)."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    topic = f"{prefix}.user.ada.f"
    sink = DeliverSink(
        DeliverConfig.model_validate({"routes": {"ada.f": [{"type": "kafka", "topic": topic}]}}), "deliver"
    )
    sink.setup(RunContext(output_dir=tmp_path, kafka=kafka))
    gone = kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})
    monkeypatch.setattr(sink, "_producer", Producer(producer_config(gone)))
    monkeypatch.setattr(sink_module, "_ACK_WAIT_S", 2.0)
    alerts = synthetic_alerts(10)[:3]
    sink.write(Batch(alerts, {"ada.f": alerts}))
    with pytest.raises(KafkaUnavailableError, match="3 matches not acknowledged by Kafka"):
        sink.flush()
