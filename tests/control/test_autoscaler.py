"""Replicas follow the load: a burst through the controller's autoscaler, over the real Kafka."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.clients import producer_config
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count

pytestmark = pytest.mark.kafka


def _produce(config: dict[str, object], topic: str, messages: list[bytes]) -> None:
    producer = Producer(config)
    for value in messages:
        while True:
            try:
                producer.produce(topic, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)


def test_a_burst_scales_the_stage_up_then_back_down(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 20_000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        operator = controller.operator
        url = controller.url
        policy = {
            "min_replicas": 1,
            "max_replicas": 3,
            "target_lag_per_replica": 1500,
            "scale_up_cooldown_s": 2.0,
            "scale_down_cooldown_s": 6.0,
        }
        refused = httpx.put(
            f"{url}/stages/ingest/autoscaling", headers=operator, json={**policy, "min_replicas": 4}
        )
        assert refused.status_code == 422
        assert httpx.put(f"{url}/stages/ingest/autoscaling", json=policy, headers=operator).status_code == 200

        def ingest_replicas() -> int:
            return int(httpx.get(f"{url}/pipeline", headers=operator).json()["stages"][0]["replicas"])

        # A burst arrives faster than one replica takes it: made first, then produced from memory.
        burst = [
            payload for _, payload in SyntheticNight(SyntheticConfig(alerts=alerts, cutouts=False, seed=42))
        ]
        burst_started = time.monotonic()
        feeder = threading.Thread(
            target=_produce, args=(producer_config(spec.kafka), spec.kafka.raw_topic, burst)
        )
        feeder.start()
        wait_until(lambda: ingest_replicas() >= 2, 15, "the autoscaler to add an ingest replica")
        scaled_up_after = time.monotonic() - burst_started
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 300, "the burst to be stored")
        wait_until(lambda: ingest_replicas() == 1, 90, "the stage to return to its minimum")
        assert store_count(tmp_path) == alerts
        report = httpx.get(f"{url}/autoscaler", headers=operator).json()
        ups = [d for d in report["decisions"] if d["replicas_to"] > d["replicas_from"]]
        downs = [d for d in report["decisions"] if d["replicas_to"] < d["replicas_from"]]
        assert ups
        assert "lag" in ups[0]["reason"]
        assert ups[0]["lag"] > 1500
        assert downs
        assert downs[-1]["replicas_to"] == 1
        metrics = httpx.get(f"{url}/metrics", headers=operator).text
        assert 'starling_autoscaler_decisions_total{stage="ingest",direction="up"}' in metrics
        assert scaled_up_after < 15
    finally:
        controller.stop()
