"""A chain cut into the stages its description lists, over a real Kafka and under the controller."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from starling.control.backends.processes import LocalChain
from starling.core.spec import ComponentSpec, PipelineSpec, StageSpec
from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count

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


def _count(output: Path, sql: str) -> int:
    import sqlite3

    with sqlite3.connect(output / "starling.db", timeout=30) as db:
        return int(db.execute(sql).fetchone()[0])


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
        assert _count(tmp_path, "SELECT count(*) FROM alerts") == alerts
        assert _count(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts") == alerts
        features = "SELECT count(DISTINCT alert_id) FROM annotations WHERE annotator = 'lc-features'"
        assert _count(tmp_path, features) == alerts
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
        assert _count(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts") == alerts
        assert _count(tmp_path, "SELECT count(*) FROM alerts") == alerts
        solar = "SELECT count(*) FROM annotations WHERE annotator = 'solar-system'"
        assert 0 < _count(tmp_path, solar) < alerts  # from the change on, not before it
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
