"""Users' filters through the controller while a stream flows over the real Kafka: each alert is
judged by exactly the filters that were live when the filter stage took it; matches reach the
filter's own Kafka topic; bad filters are refused with where and why."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from starling.adql.language import compile_filter
from starling.alert.decoder import AlertDecoder
from starling.control.rollout import LIVE_WAIT_S
from starling.transport.kafka.envelope import decode_envelope
from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, read_topic, store_count

pytestmark = pytest.mark.kafka


def test_filters_change_while_the_stream_flows(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    alerts = 6000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    # Every match is checked below: no output-volume quota holds any back in this test.
    quotas = tmp_path / "quotas.toml"
    quotas.write_text("matches_per_minute = 10000000\n")
    controller = ControllerProcess(pipeline, tmp_path, "--quotas", str(quotas))
    try:
        url, operator = controller.url, controller.operator
        # A change's answer waits up to LIVE_WAIT_S for every replica to apply it: the client waits longer.
        api = httpx.Client(timeout=LIVE_WAIT_S + 10)
        ada, bob = controller.user_token("ada"), controller.user_token("bob")

        # Refused at once, with where and why.
        bad = api.post(f"{url}/filters", headers=ada, json={"name": "oops", "expression": "mag < 19 AND AND"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["column"] == 14
        unknown = api.post(f"{url}/filters", headers=ada, json={"name": "oops", "expression": "mgn < 19"})
        assert unknown.status_code == 422
        assert "did you mean mag" in unknown.json()["detail"][0]["msg"]

        versions: dict[int, list[dict[str, Any]]] = {}

        def filter_worker_status() -> dict[str, Any]:
            status = api.get(f"{url}/stages/filter/workers", headers=operator).json()[0]["status"]
            versions[status["config_version"]] = status["config"]
            return status

        def applied(check: Any) -> None:
            started = time.monotonic()
            wait_until(lambda: check(filter_worker_status()), 15, "the filter change to be live")
            applied_in.append(time.monotonic() - started)

        applied_in: list[float] = []
        filter_worker_status()
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 600.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 500, 120, "the stream to flow")

        created = api.post(
            f"{url}/filters", headers=ada, json={"name": "ada-bright", "expression": "mag < 19"}
        )
        assert created.status_code == 201, created.text
        applied(lambda s: "ada.ada-bright" in s["components"])  # a user's filter: <owner>.<name>
        time.sleep(1.5)
        changed = api.patch(f"{url}/filters/ada-bright", headers=ada, json={"expression": "mag < 18"})
        assert changed.status_code == 200, changed.text
        applied(lambda s: any(c["config"].get("expression") == "mag < 18" for c in s["config"]))
        time.sleep(1.5)
        north = {
            "name": "bob-north",
            "expression": "dec > 30 AND reliability > 0.3",
            "outputs": [{"type": "kafka", "format": "json"}],
        }
        assert api.post(f"{url}/filters", headers=bob, json=north).status_code == 201
        applied(lambda s: "bob.bob-north" in s["components"])
        # Bob cannot see or touch Ada's filter; the operator sees both.
        assert api.delete(f"{url}/filters/ada-bright", headers=bob).status_code == 404
        assert [f["name"] for f in api.get(f"{url}/filters", headers=bob).json()] == ["bob-north"]
        assert {f["name"] for f in api.get(f"{url}/filters", headers=operator).json()} == {
            "ada-bright",
            "bob-north",
        }
        # Names are each user's own: Bob may have an "ada-bright" too, and learns nothing of Ada's.
        own = {"name": "ada-bright", "expression": "mag < 1"}
        assert api.post(f"{url}/filters", headers=bob, json=own).status_code == 201
        applied(lambda s: "bob.ada-bright" in s["components"])
        assert api.post(f"{url}/filters", headers=bob, json=own).status_code == 409
        assert api.delete(f"{url}/filters/ada-bright", headers=bob).status_code == 200
        applied(lambda s: not any(c.get("name") == "bob.ada-bright" for c in s["config"]))
        time.sleep(1.5)
        assert api.delete(f"{url}/filters/ada-bright", headers=ada).status_code == 200
        applied(lambda s: not any(c.get("name") == "ada.ada-bright" for c in s["config"]))
        feeder.join(timeout=120)
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "the whole stream to be stored")
        assert max(applied_in) < 10  # live within seconds, nothing restarted

        listed = api.get(f"{url}/filters/bob-north", headers=bob).json()
        assert listed["counts"]["seen"] > 0
        assert 0 < listed["counts"]["matched"] <= listed["counts"]["seen"]

        # Every alert was judged by the filters live at its time, no more, no fewer.
        decoder = AlertDecoder()
        envelopes = [
            decode_envelope(m.value(), decoder)
            for m in read_topic(kafka_bootstrap, spec.kafka.topic("filtered"), alerts)
        ]
        assert len({e.alert.alert_id for e in envelopes}) == alerts
        seen_versions: set[int] = set()
        bob_matches: set[int] = set()
        for envelope in envelopes:
            version = envelope.provenance["filter"]
            seen_versions.add(version)
            live = {c["name"]: c["config"]["expression"] for c in versions[version] if c["use"] == "adql"}
            for name in ("ada.ada-bright", "bob.bob-north"):
                if name not in live:
                    assert name not in envelope.matches
                    continue
                expected = bool(compile_filter(live[name]).evaluate_alerts([envelope.alert])[0])
                assert (name in envelope.matches) == expected, (name, live[name], envelope.alert)
            if "bob.bob-north" in envelope.matches:
                bob_matches.add(envelope.alert.alert_id)
        user_versions = [v for v in seen_versions if any(c["use"] == "adql" for c in versions[v])]
        assert len(user_versions) >= 3  # the stream crossed the add, the change and the second add

        # A topic of his own, named by owner and filter: no other user's filter can write to it.
        delivered = read_topic(kafka_bootstrap, spec.kafka.topic("user.bob.bob-north"), len(bob_matches))
        assert {json.loads(m.value())["alert_id"] for m in delivered} == bob_matches

        # Try a filter on what the store holds: it counts as the live stage judged.
        tried = api.post(f"{url}/try-filter", headers=ada, json={"expression": "mag < 18", "sample": 3})
        assert tried.status_code == 200, tried.text
        result = tried.json()
        assert result["alerts_examined"] == alerts
        stored_bright = sum(1 for e in envelopes if e.alert.mag is not None and e.alert.mag < 18)
        assert result["matched"] == stored_bright
        assert len(result["sample"]) == 3
    finally:
        controller.stop()
