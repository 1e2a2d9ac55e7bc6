"""The shape follows the load over a real Kafka: a burst makes the controller split its bottleneck stage, and
the calm after it fuses the stage back, each decision with its reason, and nothing lost or doubled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from starling.core.spec import ComponentSpec
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, send_raw, store_count

pytestmark = pytest.mark.kafka

SHAPE = {
    "behind_lag": 500,
    "split_after_s": 2,
    "min_share": 0.25,
    "low_lag": 50,
    "fuse_after_s": 5,
    "cooldown_s": 3,
}


def test_a_burst_splits_the_bottleneck_and_the_calm_fuses_it_back(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 15_000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    # The annotators that read the history run last: a split moves the heaviest of them with those after it,
    # so each still runs after the others. Which of the two is heavier is measured by the replicas (they
    # cost about the same per alert: either may be); the choice of the cut is test_shape_policy's.
    light = ComponentSpec(use="solar-system")
    spec = spec.with_kind("annotators", [light, *spec.annotators, ComponentSpec(use="lc-features")])
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        at_most_one = {"min_replicas": 1, "max_replicas": 1}  # ingest cannot scale out: it can only be split
        assert (
            httpx.put(f"{url}/stages/ingest/autoscaling", json=at_most_one, headers=operator).status_code
            == 200
        )
        assert httpx.put(f"{url}/shape", json=SHAPE, headers=operator).status_code == 200
        # The burst: all of it at once (made first, so the producer, not the generator, sets the pace).
        night = SyntheticNight(SyntheticConfig(alerts=alerts, alerts_per_visit=200, cutouts=False))
        send_raw(spec, list(night))

        def decisions() -> list[dict[str, object]]:
            return list(httpx.get(f"{url}/shape", headers=operator).json()["decisions"])

        wait_until(lambda: len(decisions()) >= 1, 120, "the shaper to split the bottleneck")
        split = decisions()[0]
        annotators = ["solar-system", "history-summary", "lc-features"]
        moved = split["components"]
        assert moved in (annotators[1:], annotators[2:]), split  # a heaviest one and those after it
        assert (split["kind"], split["stage"]) == ("split", "ingest")
        assert split["done"] is True, split
        assert "over 500" in str(split["reason"])
        assert f"{', '.join(moved)} take" in str(split["reason"])
        assert f"({moved[0]}: " in str(split["reason"])  # the heaviest, with its cost per alert
        new_stage = f"ingest-{moved[0]}"
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [s["name"] for s in view["stages"]] == ["ingest", new_stage, "filter", "distribute"]
        assert [c["use"] for c in view["stages"][1]["components"]] == moved
        autoscaler = httpx.get(f"{url}/autoscaler", headers=operator).json()
        assert autoscaler["policies"][new_stage]["max_replicas"] == 1  # its stage's policy

        wait_until(lambda: store_count(tmp_path) >= alerts, 240, "the burst to be stored")
        wait_until(lambda: len(decisions()) >= 2, 120, "the shaper to fuse the stage back")
        fuse = decisions()[1]
        assert (fuse["kind"], fuse["stage"], fuse["new_stage"]) == (
            "fuse",
            "ingest",
            new_stage,
        )
        assert fuse["done"] is True, fuse
        assert "under 50" in str(fuse["reason"])
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [s["name"] for s in view["stages"]] == ["ingest", "filter", "distribute"]
        assert [c["use"] for c in view["stages"][0]["components"]] == annotators

        with sqlite3.connect(tmp_path / "starling.db") as db:
            assert db.execute("SELECT count(*), count(DISTINCT alert_id) FROM alerts").fetchone() == (
                alerts,
                alerts,
            )
            for annotator in annotators[1:]:  # each annotated every alert, before, during and after the split
                annotated = "SELECT count(DISTINCT alert_id) FROM annotations WHERE annotator = ?"
                assert db.execute(annotated, (annotator,)).fetchone()[0] == alerts, annotator
        status = httpx.get(f"{url}/status", headers=operator).json()
        assert [d["kind"] for d in status["shape"]["decisions"]] == ["split", "fuse"]
        metrics = httpx.get(f"{url}/metrics", headers=operator).text
        assert 'starling_shape_decisions_total{kind="split",stage="ingest",done="true"} 1' in metrics
        assert 'starling_shape_decisions_total{kind="fuse",stage="ingest",done="true"} 1' in metrics
        # Turned off, the shape stays as it is.
        assert httpx.delete(f"{url}/shape", headers=operator).status_code == 200
        assert httpx.get(f"{url}/shape", headers=operator).json()["policy"] is None
    finally:
        controller.stop()
