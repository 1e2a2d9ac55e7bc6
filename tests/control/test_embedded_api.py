"""The same control API on the embedded runtime: every route, live changes, pause, drain. Real HTTP."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from starling.control.api.worker_app import worker_app
from starling.control.auth import SharedSecret
from starling.control.server import BackgroundServer
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.store.open import open_store
from tests.support.helpers import wait_until


def test_embedded_runtime_under_the_control_api(tmp_path: Path) -> None:
    spec = PipelineSpec(
        batch_size=100,
        source=ComponentSpec(
            use="synthetic", config={"alerts": 30_000, "alerts_per_visit": 300, "cutouts": False}
        ),
        annotators=[ComponentSpec(use="history-summary", name="A")],
        filters=[ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})],
        sinks=[ComponentSpec(use="store")],
    )
    pipeline = EmbeddedPipeline(spec, tmp_path)
    secret = "stl_embedded-test-secret"
    server = BackgroundServer(worker_app(pipeline, SharedSecret(secret)))
    base = f"http://127.0.0.1:{server.start()}"
    http = httpx.Client(headers={"Authorization": f"Bearer {secret}"})
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: httpx.get(f"{base}/ready").status_code == 200, 30, "ready")
        # Some alerts must pass with the first configuration before anything changes (the {A} run below).
        wait_until(lambda: http.get(f"{base}/status").json()["messages_in"] > 0, 30, "a first batch")
        assert http.post(f"{base}/pause").json() == {"state": "paused"}
        time.sleep(0.3)
        held = http.get(f"{base}/status").json()["messages_in"]
        time.sleep(0.5)
        assert http.get(f"{base}/status").json()["messages_in"] == held, "a paused runtime takes nothing"

        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        assert httpx.get(f"{base}/status").status_code == 401  # the rest needs the token
        assert http.get(f"{base}/status").json()["stage"] == "embedded"
        assert "starling_messages_in_total" in http.get(f"{base}/metrics").text
        assert "<vosi:available>false</vosi:available>" in httpx.get(f"{base}/availability").text  # paused
        assert "VOSI#capabilities" in httpx.get(f"{base}/capabilities").text
        config = http.get(f"{base}/config").json()
        assert [c["name"] for c in config["components"]] == ["A", "bright", None]

        refused = http.patch(f"{base}/config", json={"component": "bright", "config": {"max_mag": "faint"}})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["bright", "max_mag"]
        no_source = http.put(f"{base}/components", json=[{"use": "synthetic"}])
        assert no_source.status_code == 422
        assert (
            http.patch(f"{base}/config", json={"component": "bright", "config": {"max_mag": 17.0}}).json()[
                "version"
            ]
            == 2
        )
        both = [
            {"use": "history-summary", "name": "A"},
            {"use": "history-summary", "name": "B"},
            {"use": "threshold", "name": "bright", "config": {"max_mag": 17.0}},
            {"use": "store"},
        ]
        assert http.put(f"{base}/components", json=both).json()["version"] == 3
        assert http.post(f"{base}/resume").json() == {"state": "running"}
        wait_until(lambda: http.get(f"{base}/status").json()["config_version"] == 3, 30, "version 3 applied")
        mark = http.get(f"{base}/status").json()["messages_in"]
        wait_until(lambda: http.get(f"{base}/status").json()["messages_in"] > mark + 2000, 60, "more alerts")
        only_b = both[1:]
        assert http.put(f"{base}/components", json=only_b).json()["version"] == 4
        wait_until(lambda: http.get(f"{base}/status").json()["config_version"] == 4, 30, "version 4 applied")
        mark = http.get(f"{base}/status").json()["messages_in"]
        wait_until(lambda: http.get(f"{base}/status").json()["messages_in"] > mark + 1000, 60, "more alerts")
        assert http.post(f"{base}/drain").status_code == 202
        runner.join(timeout=60)
        assert not runner.is_alive()
        assert http.get(f"{base}/status").json()["state"] == "drained"
    finally:
        pipeline.stop()
        runner.join(timeout=60)
        server.stop()

    decoded = pipeline.stats.alerts_decoded
    assert 0 < decoded < 30_000  # drained before the end of the source
    store = open_store(tmp_path / "starling.db")
    try:
        assert store.count("alerts") == decoded  # every alert taken was written before the drain ended
        rows = store.query(
            "SELECT a.alert_id, a.mag, group_concat(n.annotator) AS by, m.alert_id IS NOT NULL AS matched "
            "FROM alerts a LEFT JOIN annotations n USING (survey, alert_id) "
            "LEFT JOIN filter_matches m ON m.survey = a.survey AND m.alert_id = a.alert_id "
            "GROUP BY a.survey, a.alert_id ORDER BY a.alert_id"
        )
    finally:
        store.close()
    # Alert ids grow in processing order: the annotator sets must run {A}, then {A, B}, then {B}.
    sets = [frozenset((row["by"] or "").split(",")) for row in rows]
    runs = [s for i, s in enumerate(sets) if i == 0 or s != sets[i - 1]]
    assert runs == [frozenset({"A"}), frozenset({"A", "B"}), frozenset({"B"})]
    for row, annotators in zip(rows, sets, strict=True):
        limit = 19.0 if annotators == {"A"} else 17.0  # the threshold changed with B's arrival
        assert bool(row["matched"]) == (row["mag"] is not None and row["mag"] < limit), row
