"""A chain cut into the stages its description lists, over a real Kafka and under the controller."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from starling.control.backends.processes import LocalChain
from starling.core.spec import ComponentSpec, PipelineSpec, StageSpec
from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count, store_number

pytestmark = pytest.mark.kafka


def _four_stages(bootstrap: str, prefix: str, alerts: int) -> PipelineSpec:
    """The test chain, with the light-curve features in a ``classify`` stage between ingest and filter."""
    base = chain_spec(bootstrap, prefix, alerts)
    return base.model_copy(
        update={
            "stages": [
                base.stages[0],
                StageSpec(name="classify", annotators=[ComponentSpec(use="lc-features")]),
                *base.stages[1:],
            ]
        }
    )


def test_a_chain_of_four_stages_over_kafka_stores_every_alert_once(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 1200
    spec = _four_stages(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path, replicas={"classify": 2})
    try:
        chain.start()
        assert sorted({(w.stage, w.replica) for w in chain.workers}) == [
            ("classify", 0),
            ("classify", 1),
            ("distribute", 0),
            ("filter", 0),
            ("ingest", 0),
        ]
        assert feed(spec) == alerts
        chain.wait_for(alerts, timeout_s=240)
        # Every stage took every alert once, the classify stage's two replicas between them.
        for stage in ("ingest", "classify", "filter", "distribute"):
            taken = sum(int(s["messages_in"]) for s in chain.statuses(stage))
            assert taken == alerts, (stage, taken)
        assert all(int(s["messages_in"]) > 0 for s in chain.statuses("classify"))
        # The new stage's annotation reached the store with every alert; nothing is stored twice.
        assert store_number(tmp_path, "SELECT count(*) FROM alerts") == alerts
        assert store_number(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts") == alerts
        features = "SELECT count(DISTINCT alert_id) FROM annotations WHERE annotator = 'lc-features'"
        assert store_number(tmp_path, features) == alerts
        # Each alert's spans name the stages it passed: the classify stage among them, in its place.
        wait_until(
            lambda: chain.statuses("distribute")[0]["latency"].get("classify", {}).get("count") == alerts,
            30,
            "every alert's span through the classify stage",
        )
    finally:
        chain.stop()


def test_the_controller_runs_and_changes_any_stage_its_pipeline_lists(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 1500
    spec = _four_stages(kafka_bootstrap, prefix, alerts)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [(s["name"], s["input_topics"], s["output_topic"]) for s in view["stages"]] == [
            ("ingest", [f"{prefix}.raw"], f"{prefix}.ingested"),
            ("classify", [f"{prefix}.ingested"], f"{prefix}.stage.classify"),
            ("filter", [f"{prefix}.stage.classify"], f"{prefix}.filtered"),
            ("distribute", [f"{prefix}.filtered"], None),
        ]
        assert all(len(s["workers"]) == 1 for s in view["stages"])

        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 500.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 300, 90, "the stream to flow")
        # A component added to the new stage while alerts flow; the stage scaled out.
        added = httpx.post(
            f"{url}/stages/classify/components", json={"use": "solar-system"}, headers=operator
        )
        assert added.status_code == 201, added.text
        scaled = httpx.put(f"{url}/stages/classify/replicas", json={"replicas": 2}, headers=operator)
        assert scaled.status_code == 200, scaled.text
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "every alert to be stored")
        assert store_number(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts") == alerts
        assert store_number(tmp_path, "SELECT count(*) FROM alerts") == alerts
        solar = "SELECT count(*) FROM annotations WHERE annotator = 'solar-system'"
        assert 0 < store_number(tmp_path, solar) < alerts  # from the change on, not before it
        wait_until(
            lambda: len(httpx.get(f"{url}/stages/classify/workers", headers=operator).json()) == 2,
            60,
            "a second classify replica",
        )

        # A stage the pipeline does not have: 404, naming the stages it has.
        body = {"use": "lc-features"}
        missing = httpx.post(f"{url}/stages/nowhere/components", json=body, headers=operator)
        assert missing.status_code == 404
        assert "ingest, classify, filter, distribute" in missing.json()["detail"]
        metrics = httpx.get(f"{url}/metrics", headers=operator).text
        assert 'starling_stage_replicas{stage="classify"} 2' in metrics
    finally:
        controller.stop()


def _written(bootstrap: str, topic: str) -> int:
    """Messages on ``topic`` so far: the sum of its partitions' ends."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{time.time_ns()}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        )
    finally:
        consumer.close()


def test_a_stage_beside_the_chain_delays_no_alert_and_sees_each_once(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    """A service beside the chain reads what the filter stage writes from its start on; stopped (a hung
    service), it holds up nothing; back, it takes up where it stopped; removed, the chain goes on."""
    alerts = 3000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 300.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 500, 90, "the stream to flow")
        filtered = spec.kafka.topic("filtered")
        before = _written(kafka_bootstrap, filtered)
        branch = {
            "name": "watcher",
            "beside": "filter",
            "components": [
                {"use": "adql", "name": "watcher-all", "config": {"expression": "ra >= 0"}},
                {"use": "files", "config": {"directory": "watcher", "formats": ["jsonl"]}},
            ],
        }
        added = httpx.post(f"{url}/stages", json=branch, headers=operator, timeout=120)
        assert added.status_code == 201, added.text
        after = _written(kafka_bootstrap, filtered)
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [(s["name"], s["input_topics"], s["output_topic"]) for s in view["stages"]][-1] == (
            "watcher",
            [filtered],
            None,
        )
        wait_until(lambda: (tmp_path / "watcher" / "watcher-all.jsonl").exists(), 60, "the branch's output")
        # Stopped, as a hung service would be: the chain delivers everything without it.
        stopped = httpx.put(f"{url}/stages/watcher/replicas", json={"replicas": 0}, headers=operator)
        assert stopped.status_code == 200, stopped.text
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "every alert stored, the branch stopped")
        # Back: it takes up where it stopped, and has each alert of its time once.
        httpx.put(f"{url}/stages/watcher/replicas", json={"replicas": 1}, headers=operator)
        total = _written(kafka_bootstrap, filtered)
        lines = tmp_path / "watcher" / "watcher-all.jsonl"
        wait_until(
            lambda: len(lines.read_text().splitlines()) >= total - after, 120, "the branch to catch up"
        )
        ids = [json.loads(line)["alert_id"] for line in lines.read_text().splitlines()]
        assert len(ids) == len(set(ids))
        assert total - after <= len(ids) <= total - before
        stored = store_number(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts")
        assert stored == alerts
        # Removed: the chain is as it was.
        removed = httpx.delete(f"{url}/stages/watcher", headers=operator, timeout=120)
        assert removed.status_code == 200, removed.text
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [s["name"] for s in view["stages"]] == ["ingest", "filter", "distribute"]
    finally:
        controller.stop()
