"""The control API of a stage worker, over real HTTP, against real workers on a real Kafka."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from starling.alert.decoder import AlertDecoder
from starling.control.backends.processes import LocalChain
from starling.control.client import PIPELINE_VERSION_HEADER
from starling.core.spec import ComponentSpec
from starling.transport.kafka.envelope import decode_envelope
from starling.transport.kafka.feed import feed
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count

pytestmark = pytest.mark.kafka


def _envelopes(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    decoder = AlertDecoder()
    found: list[Any] = []
    deadline = time.monotonic() + 60
    while len(found) < expected and time.monotonic() < deadline:
        found.extend(
            decode_envelope(m.value(), decoder) for m in consumer.consume(500, 1.0) if m.error() is None
        )
    consumer.close()
    return found


def test_every_route_of_a_worker(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    spec = chain_spec(kafka_bootstrap, prefix, 300)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        auth = {"Authorization": f"Bearer {chain.token}"}
        for worker in chain.workers:
            base = f"http://127.0.0.1:{worker.port}"
            assert httpx.get(f"{base}/status").status_code == 401
            assert httpx.get(f"{base}/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert httpx.post(f"{base}/drain").status_code == 401
            assert httpx.get(f"{base}/health").json()["status"] == "ok"
            assert httpx.get(f"{base}/ready").status_code == 200
            status = httpx.get(f"{base}/status", headers=auth).json()
            assert status["stage"] == worker.stage
            assert status["state"] == "running"
            assert status["config_version"] == 1
            assert status["applied_pipeline_version"] is None  # its file was written by no controller
            config = httpx.get(f"{base}/config", headers=auth).json()
            assert config["version"] == 1
            assert isinstance(config["components"], list)
            # The controller's pushes carry its pipeline version: the worker reports it once applied.
            versioned = {**auth, PIPELINE_VERSION_HEADER: "7"}
            put = httpx.put(f"{base}/components", json=config["components"], headers=versioned)
            assert put.status_code == 200
            wait_until(
                lambda b=base: httpx.get(f"{b}/status", headers=auth).json()["applied_pipeline_version"] == 7,
                30,
                "pipeline version 7 applied",
            )
            availability = httpx.get(f"{base}/availability")
            assert availability.headers["content-type"].startswith("application/xml")
            assert "<vosi:available>true</vosi:available>" in availability.text
            capabilities = httpx.get(f"{base}/capabilities").text
            assert 'standardID="ivo://ivoa.net/std/VOSI#availability"' in capabilities
            assert f"{base}/availability" in capabilities
            openapi = httpx.get(f"{base}/openapi.json").json()
            for path in (
                "/health",
                "/ready",
                "/status",
                "/metrics",
                "/config",
                "/pause",
                "/resume",
                "/drain",
                "/availability",
                "/capabilities",
                "/components",
                "/wiring",
            ):
                assert path in openapi["paths"], path
            # A stage is rewired only while it holds, paused at a batch boundary (a reshape pauses it first).
            wiring = {"pipeline": spec.model_dump(mode="json"), "pipeline_version": 8, "start": {}}
            refused = httpx.post(f"{base}/wiring", json=wiring, headers=auth)
            assert refused.status_code == 409
            assert "not holding" in refused.text
            assert httpx.post(f"{base}/pause", headers=auth).json() == {"state": "paused"}
            wait_until(lambda b=base: httpx.get(f"{b}/status", headers=auth).json()["holding"], 30, "holding")
            malformed = {**wiring, "start": {"no-partition": 3}}
            assert httpx.post(f"{base}/wiring", json=malformed, headers=auth).status_code == 422
            assert httpx.get(f"{base}/status", headers=auth).json()["state"] == "paused"
            assert httpx.post(f"{base}/resume", headers=auth).json() == {"state": "running"}
        feed(spec)
        chain.wait_for(300, timeout_s=120)
        metrics = httpx.get(chain.worker("distribute").url("/metrics"), headers=auth).text
        assert 'starling_messages_in_total{stage="distribute"} 300.0' in metrics
        assert (
            'starling_component_alerts_total{component="store",direction="in",stage="distribute"} 300.0'
            in metrics
        )
    finally:
        chain.stop()


def test_config_changes_are_validated_and_applied_live(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 2000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        auth = chain.worker("filter").headers
        filter_url = chain.worker("filter").url
        refused = httpx.patch(
            filter_url("/config"), json={"component": "bright", "config": {"max_mag": "faint"}}, headers=auth
        )
        assert refused.status_code == 422
        [problem] = refused.json()["detail"]
        assert problem["loc"] == ["bright", "max_mag"]
        assert "valid number" in problem["msg"]
        unknown_field = httpx.patch(
            filter_url("/config"), json={"component": "bright", "config": {"mag_max": 1}}, headers=auth
        )
        assert unknown_field.status_code == 422
        assert unknown_field.json()["detail"][0]["loc"] == ["bright", "mag_max"]
        missing = httpx.patch(filter_url("/config"), json={"component": "nope", "config": {}}, headers=auth)
        assert missing.status_code == 404
        assert "no component 'nope'" in missing.json()["detail"]
        malformed = httpx.patch(filter_url("/config"), json={"config": {}}, headers=auth)
        assert malformed.status_code == 422

        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 700.0})
        feeder.start()
        wait_until(
            lambda: chain.statuses("filter")[0]["messages_in"] > 500, 60, "the stream to reach the filter"
        )
        accepted = httpx.patch(
            filter_url("/config"), json={"component": "bright", "config": {"max_mag": 17.0}}, headers=auth
        )
        assert accepted.status_code == 200
        assert accepted.json()["version"] == 2
        wait_until(lambda: chain.statuses("filter")[0]["config_version"] == 2, 30, "version 2 to be applied")
        status = chain.statuses("filter")[0]
        assert status["config"][0]["config"]["max_mag"] == 17.0
        feeder.join()
        chain.wait_for(alerts, timeout_s=120)
    finally:
        chain.stop()
    # Every alert was judged by the threshold live at its time: 19 under version 1, 17 under version 2.
    envelopes = _envelopes(kafka_bootstrap, spec.kafka.topic("filtered"), alerts)
    assert len(envelopes) == alerts
    limits = {1: 19.0, 2: 17.0}
    seen_versions = set()
    for envelope in envelopes:
        version = envelope.provenance["filter"]
        seen_versions.add(version)
        alert = envelope.alert
        should_match = alert.mag is not None and alert.mag < limits[version]
        assert ("bright" in envelope.matches) == should_match, (alert.alert_id, version, alert.mag)
    assert seen_versions == {1, 2}


def test_components_added_and_removed_while_the_stream_flows(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 3000
    spec = chain_spec(kafka_bootstrap, prefix, alerts).with_kind(
        "annotators", [ComponentSpec(use="history-summary", name="A")]
    )
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        auth = chain.worker("ingest").headers
        ingest_url = chain.worker("ingest").url
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 900.0})
        feeder.start()
        wait_until(lambda: chain.statuses("ingest")[0]["messages_in"] > 700, 60, "a first part of the stream")
        both = [{"use": "history-summary", "name": "A"}, {"use": "history-summary", "name": "B"}]
        assert httpx.put(ingest_url("/components"), json=both, headers=auth).json()["version"] == 2
        wait_until(lambda: chain.statuses("ingest")[0]["messages_in"] > 1700, 60, "more of the stream")
        assert httpx.put(
            ingest_url("/components"), json=[{"use": "history-summary", "name": "B"}], headers=auth
        ).json() == {"version": 3, "applied": False}
        bad = httpx.put(ingest_url("/components"), json=[{"use": "no-such-annotator"}], headers=auth)
        assert bad.status_code == 422
        assert "no component named 'no-such-annotator'" in bad.json()["detail"][0]["msg"]
        feeder.join()
        chain.wait_for(alerts, timeout_s=120)
        wait_until(lambda: store_count(tmp_path) >= alerts, 60, "every alert stored")
    finally:
        chain.stop()
    expected = {1: {"A"}, 2: {"A", "B"}, 3: {"B"}}
    envelopes = _envelopes(kafka_bootstrap, spec.kafka.topic("ingested"), alerts)
    assert len({e.alert.alert_id for e in envelopes}) == alerts
    versions = set()
    for envelope in envelopes:
        version = envelope.provenance["ingest"]
        versions.add(version)
        assert set(envelope.alert.annotations) == expected[version], (envelope.alert.alert_id, version)
    assert versions == {1, 2, 3}
    assert store_count(tmp_path) == alerts


def test_drain_commits_what_is_in_hand_then_stops(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    alerts = 2500
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    chain = LocalChain(spec, tmp_path)
    try:
        chain.start()
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 800.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 600, 60, "the stream to reach the store")
        distribute = chain.worker("distribute")
        answer = httpx.post(distribute.url("/drain"), headers=distribute.headers)
        assert answer.status_code == 202
        distribute.process.wait(timeout=60)
        assert distribute.process.returncode == 0
        stored_at_drain = store_count(tmp_path)
        # Everything the drained worker took was committed: its group's offsets equal what it stored.
        consumer = Consumer(
            {"bootstrap.servers": kafka_bootstrap, "group.id": spec.kafka.group("distribute")}
        )
        from confluent_kafka import TopicPartition

        parts = [TopicPartition(spec.kafka.topic("filtered"), p) for p in range(spec.kafka.partitions)]
        committed = sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
        consumer.close()
        assert committed == stored_at_drain
        chain.start_worker("distribute", 0)
        feeder.join()
        # (A restarted worker counts from zero, so the store, not /status, says when all is through.)
        wait_until(lambda: store_count(tmp_path) >= alerts, 120, "every alert stored")
        assert store_count(tmp_path) == alerts
    finally:
        chain.stop()
