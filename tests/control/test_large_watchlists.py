"""A user's watchlist at its quota (100,000 targets) kept outside the pipeline description, over the real
Kafka: the description every worker and a Kubernetes Secret receive holds a reference of a few dozen bytes,
the ingest worker fetches the targets from the controller (checked against their digest), a worker
restarted from the pipeline file fetches them again, and only the workers and an operator may read a
stored body."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from starling.alert.decoder import AlertDecoder
from starling.transport.kafka.envelope import decode_envelope
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_messages, wait_until
from tests.support.kafka import chain_spec, read_topic, send_raw, store_count

pytestmark = pytest.mark.kafka

TARGETS = 100_000


def _ingest(url: str, operator: dict[str, str]) -> dict[str, Any]:
    workers: list[dict[str, Any]] = httpx.get(f"{url}/stages/ingest/workers", headers=operator).json()
    return workers[0]


def test_a_watchlist_at_its_quota_lives_outside_the_pipeline(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 1200
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    messages = synthetic_messages(alerts, alerts_per_visit=200)
    decoder = AlertDecoder()
    night = [alert for origin, payload in messages for alert in decoder.decode(payload, origin)]
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        ada = controller.user_token("ada")
        # Every 4th alert of the night is a target; the rest of the list is scattered over the sky.
        marked = night[::4]
        rng = np.random.default_rng(7)
        filler = TARGETS - len(marked)
        targets = [{"name": f"a{a.alert_id}", "ra": a.ra, "dec": a.dec} for a in marked] + [
            {"name": f"f{i}", "ra": float(ra), "dec": float(dec)}
            for i, (ra, dec) in enumerate(
                zip(
                    rng.uniform(0, 360, filler),
                    np.degrees(np.arcsin(rng.uniform(-1, 1, filler))),
                    strict=True,
                )
            )
        ]
        body = {"name": "big", "default_radius_arcsec": 0.5, "targets": targets}
        put = httpx.put(f"{url}/watchlists/big", headers=ada, json=body, timeout=120)
        assert put.status_code == 200, put.text
        assert put.json()["live"] is True

        # The description the workers read holds a reference, not 100,000 targets (over 8 MB inline).
        spec_file = tmp_path / "run" / "pipeline.json"
        assert spec_file.stat().st_size < 20_000, spec_file.stat().st_size
        written = json.loads(spec_file.read_text())
        watchlists = next(c for c in written["stages"][0]["annotators"] if c["use"] == "watchlists")
        reference = watchlists["config"]["lists"][0]["targets"]
        assert reference["items"] == TARGETS
        digest = reference["$body"]
        status = _ingest(url, operator)["status"]
        assert len(str(status["config"])) < 20_000

        # The user reads its whole list back; the count comes from the reference.
        whole = httpx.get(f"{url}/watchlists/big", headers=ada, timeout=60).json()
        assert whole["targets"] == [{**t, "radius_arcsec": None} for t in targets]
        listed = httpx.get(f"{url}/watchlists", headers=ada).json()
        assert listed == [{"name": "big", "owner": "ada", "targets": TARGETS, "default_radius_arcsec": 0.5}]

        # A stored body is the workers' and an operator's to read, byte for byte; not a user's.
        as_operator = httpx.get(f"{url}/bodies/{digest}", headers=operator, timeout=60)
        assert as_operator.status_code == 200
        assert "sha256:" + hashlib.sha256(as_operator.content).hexdigest() == digest
        assert httpx.get(f"{url}/bodies/{digest}", headers=ada).status_code == 403
        assert httpx.get(f"{url}/bodies/{digest}").status_code == 401
        assert httpx.get(f"{url}/bodies/sha256:{'0' * 64}", headers=operator).status_code == 404
        assert httpx.get(f"{url}/bodies/sha256:..", headers=operator).status_code == 422

        # The ingest worker, killed, comes back from the pipeline file and fetches the targets again.
        own = f"{re.escape(str(tmp_path))}/.*ingest-0.port"
        found = subprocess.run(["pgrep", "-f", own], capture_output=True, text=True).stdout.split()
        assert len(found) == 1, found
        os.kill(int(found[0]), signal.SIGKILL)
        wait_until(
            lambda: httpx.get(f"{url}/status", headers=operator).json()["restarts"].get("ingest#0", 0) >= 1,
            60,
            "the killed worker to be restarted",
        )
        version = put.json()["version"]
        wait_until(
            lambda: (_ingest(url, operator)["status"] or {}).get("applied_pipeline_version", 0) >= version,
            120,
            "the restarted worker to run the list",
        )

        send_raw(spec, messages)
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "the stream to be stored")
        envelopes = [
            decode_envelope(m.value(), decoder)
            for m in read_topic(kafka_bootstrap, spec.kafka.topic("filtered"), alerts)
        ]
        target_ids = {a.alert_id for a in marked}
        assert len(envelopes) == alerts
        for envelope in envelopes:
            mark = envelope.alert.annotations.get("watchlists", {}).get("big")
            if envelope.alert.alert_id in target_ids:
                assert mark is not None
                # The nearest target: its own, or another alert's of the same object at the same place.
                assert mark["dist_arcsec"] < 0.5
            else:
                assert mark is None or mark["target"] != f"a{envelope.alert.alert_id}"
    finally:
        controller.stop()
