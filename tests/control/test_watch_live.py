"""A watchlist and a watchmap uploaded while the stream flows over the real Kafka: every alert the
ingest stage takes after they are live is marked if, and only if, it falls on a target or region.

The stream comes in three parts so that each case is certain to happen on a busy machine: alerts taken
before the upload, alerts flowing while it is made live, and alerts sent once it is live (a stream that
had all been taken before the upload went live left the test nothing to check after it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import astropy.units as u
import httpx
import pytest
from confluent_kafka import Producer
from mocpy import MOC

from starling.alert.decoder import AlertDecoder
from starling.core.spec import PipelineSpec
from starling.transport.kafka.clients import producer_config
from starling.transport.kafka.envelope import decode_envelope
from tests.support.controller import ControllerProcess, ctl_env
from tests.support.helpers import synthetic_messages, wait_until
from tests.support.kafka import chain_spec, read_topic, send_raw, store_count

pytestmark = pytest.mark.kafka


def _paced(spec: PipelineSpec, messages: list[tuple[str, bytes]], per_second: float) -> None:
    """Send messages to the raw topic at a survey's pace (a pace, not a wait on a condition)."""
    producer = Producer(producer_config(spec.kafka))
    started = time.monotonic()
    for sent, (origin, payload) in enumerate(messages):
        time.sleep(max(0.0, started + sent / per_second - time.monotonic()))
        producer.produce(spec.kafka.raw_topic, value=payload, headers=[("origin", origin.encode())])
        producer.poll(0)
    assert producer.flush(60) == 0


def test_watchlists_and_watchmaps_go_live(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    alerts = 4000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    messages = synthetic_messages(alerts, cutouts=True, alerts_per_visit=200)
    decoder = AlertDecoder()
    night = [alert for origin, payload in messages for alert in decoder.decode(payload, origin)]
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        ada = controller.user_token("ada")
        targets = night[::7]
        csv = tmp_path / "targets.csv"
        csv.write_text("name,ra,dec\n" + "".join(f"t{a.alert_id},{a.ra},{a.dec}\n" for a in targets))
        region = MOC.from_cone(lon=200 * u.deg, lat=30 * u.deg, radius=25 * u.deg, max_depth=9)

        versions: dict[int, list[dict[str, Any]]] = {}

        def ingest_status() -> dict[str, Any]:
            status = httpx.get(f"{url}/stages/ingest/workers", headers=operator).json()[0]["status"]
            versions[status["config_version"]] = status["config"]
            return status

        ingest_status()
        send_raw(spec, messages[:1000])
        wait_until(lambda: store_count(tmp_path) > 600, 120, "the stream to flow")
        flowing = threading.Thread(target=_paced, args=(spec, messages[1000:2000], 200.0))
        flowing.start()
        added = ctl_env(["watchlist", "add", "mine", str(csv), "--radius", "1.0"], url, ada)
        assert added.returncode == 0, added.stderr
        wait_until(lambda: "watchlists" in ingest_status()["components"], 15, "the watchlist to be live")
        body = {"name": "north-sky", "kind": "moc-json", "moc": region.serialize(format="json")}
        assert httpx.put(f"{url}/watchmaps/north-sky", headers=ada, json=body).status_code == 200
        wait_until(lambda: "watchmaps" in ingest_status()["components"], 15, "the watchmap to be live")
        listed = httpx.get(f"{url}/watchlists", headers=ada).json()
        assert listed == [
            {"name": "mine", "owner": "ada", "targets": len(targets), "default_radius_arcsec": 1.0}
        ]
        bob = controller.user_token("bob")
        assert httpx.delete(f"{url}/watchlists/mine", headers=bob).status_code == 404
        bad = httpx.put(
            f"{url}/watchmaps/x", headers=ada, json={"name": "x", "kind": "moc-fits", "fits_base64": "AAAA"}
        )
        assert bad.status_code == 422
        flowing.join(timeout=120)
        send_raw(spec, messages[2000:])  # once both are live
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "the whole stream to be stored")

        envelopes = [
            decode_envelope(m.value(), decoder)
            for m in read_topic(kafka_bootstrap, spec.kafka.topic("filtered"), alerts)
        ]
        target_ids = {a.alert_id for a in targets}
        checked = {"before": 0, "after": 0}
        for envelope in envelopes:
            live = {c["use"] for c in versions[envelope.provenance["ingest"]]}
            alert = envelope.alert
            listed_mark = alert.annotations.get("watchlists", {}).get("mine")
            mapped = alert.annotations.get("watchmaps", {}).get("north-sky")
            if "watchlists" in live:
                checked["after"] += 1
                # Every alert sits exactly on its own position: a target's alert is marked, with its name.
                if alert.alert_id in target_ids:
                    assert listed_mark is not None
                    assert listed_mark["dist_arcsec"] < 1.0
                else:
                    assert listed_mark is None or listed_mark["target"] != f"t{alert.alert_id}"
            else:
                checked["before"] += 1
                assert listed_mark is None
            if "watchmaps" in live:
                inside = bool(region.contains_lonlat(alert.ra * u.deg, alert.dec * u.deg)[0])
                assert (mapped is not None) == inside
            else:
                assert mapped is None
        assert checked["before"] > 0
        assert checked["after"] > 0
    finally:
        controller.stop()
