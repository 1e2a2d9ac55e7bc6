"""A stage inserted into the running chain and removed again while alerts flow, over a real Kafka: every
alert stored once, delivered once to a topic that does not de-duplicate, with the provenance of the chain
that was live when it passed."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer

from starling.assembly import route_deliveries
from starling.core.spec import ComponentSpec
from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess, ctl
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count, store_number

pytestmark = pytest.mark.kafka

EVERYTHING = ComponentSpec(
    use="adql", name="everything", config={"expression": "ra >= 0", "outputs": [{"type": "kafka"}]}
)


def _delivered(bootstrap: str, topic: str, count: int) -> list[tuple[int, dict[str, int], float]]:
    """(alert id, provenance, time delivered) of each message on the filter's topic, from its start."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r{time.time_ns()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[tuple[int, dict[str, int], float]] = []
    deadline = time.monotonic() + 120
    idle_until = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if len(found) >= count:  # everything expected is in; a little longer shows any extra
                    idle_until = idle_until or time.monotonic() + 3
                    if time.monotonic() > idle_until:
                        break
                continue
            headers = dict(message.headers() or [])
            _survey, _, alert_id = (message.key() or b"").decode().partition(":")
            provenance = json.loads(headers["starling-provenance"])
            found.append((int(alert_id), provenance, message.timestamp()[1] / 1000))
    finally:
        consumer.close()
    return found


def _chain(url: str, operator: dict[str, str]) -> tuple[int, list[str]]:
    view = httpx.get(f"{url}/pipeline", headers=operator).json()
    return view["version"], [stage["name"] for stage in view["stages"]]


def test_wrong_reshapes_are_refused_before_anything_stops(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    base = chain_spec(kafka_bootstrap, prefix, 10)
    spec = base.with_kind("annotators", [*base.annotators, ComponentSpec(use="lc-features")])
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator

        def post(path: str, body: dict[str, object] | None = None) -> httpx.Response:
            return httpx.post(f"{url}{path}", json=body, headers=operator, timeout=300)

        assert post("/stages", {"name": "classify", "after": "nowhere"}).status_code == 404
        assert post("/stages", {"name": "filter", "after": "ingest"}).status_code == 422
        assert post("/stages", {"name": "late", "after": "distribute"}).status_code == 422
        wrong = post(
            "/stages",
            {
                "name": "classify",
                "after": "ingest",
                "components": [{"use": "threshold", "config": {"max_mag": "x"}}],
            },
        )
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"] == ["threshold", "max_mag"]
        assert (
            post("/stages", {"name": "x", "after": "ingest", "components": [{"use": "nope"}]}).status_code
            == 422
        )
        assert httpx.delete(f"{url}/stages/ingest", headers=operator).status_code == 422
        assert httpx.delete(f"{url}/stages/nowhere", headers=operator).status_code == 404
        assert post("/stages/distribute/fuse", {"next": "x"}).status_code == 422  # nothing after it
        assert post("/stages/ingest/fuse", {"next": "distribute"}).status_code == 422  # filter is next
        # A split moves a stage's last components: history-summary runs before lc-features, so it stays.
        first_moved = post("/stages/ingest/split", {"name": "x", "components": ["history-summary"]})
        assert first_moved.status_code == 422
        assert "moves the last components of ingest" in str(first_moved.json()["detail"])
        # Users' filters and the deliveries of their matches stay in one stage each.
        assert httpx.delete(f"{url}/stages/filter", headers=operator).status_code == 422
        assert (
            post(
                "/stages/ingest/split", {"name": "x", "components": ["history-summary", "lc-features"]}
            ).status_code
            == 422  # it would leave ingest empty
        )
        assert post("/stages/ingest/split", {"name": "x", "components": ["nope"]}).status_code == 422
        user = controller.user_token("ada")
        mine = httpx.post(f"{url}/stages", json={"name": "mine", "after": "ingest"}, headers=user)
        assert mine.status_code == 403
        assert _chain(url, operator) == (1, ["ingest", "filter", "distribute"])
        assert all(
            len(s["workers"]) == 1 for s in httpx.get(f"{url}/pipeline", headers=operator).json()["stages"]
        )
    finally:
        controller.stop()


def test_insert_split_fuse_and_remove_while_alerts_flow_lose_and_double_nothing(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 20_000
    base = chain_spec(kafka_bootstrap, prefix, alerts)
    spec = route_deliveries(base.with_kind("filters", [*base.filters, EVERYTHING]))
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, operator = controller.url, controller.operator
        token = operator["Authorization"].split()[1]
        chains = dict([_chain(url, operator)])  # the chain as of each pipeline version
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 200.0})
        feeder.start()

        def flowing(more: int) -> None:
            now = store_count(tmp_path)
            wait_until(lambda: store_count(tmp_path) >= min(alerts, now + more), 120, "the stream to flow on")

        flowing(1000)
        inserted = httpx.post(
            f"{url}/stages",
            json={
                "name": "classify",
                "after": "ingest",
                "components": [{"use": "lc-features"}, {"use": "solar-system"}],
            },
            headers=operator,
            timeout=300,
        )
        assert inserted.status_code == 201, inserted.text
        chains.update([_chain(url, operator)])
        flowing(750)
        split = ctl(
            "split-stage", "classify", "--name", "solar", "--component", "solar-system", url=url, token=token
        )
        assert split.returncode == 0, split.stdout + split.stderr
        chains.update([_chain(url, operator)])
        flowing(750)
        fused = httpx.post(
            f"{url}/stages/filter/fuse", json={"next": "distribute"}, headers=operator, timeout=300
        )
        assert fused.status_code == 200, fused.text
        chains.update([_chain(url, operator)])
        flowing(750)
        removed = ctl("remove-stage", "classify", url=url, token=token)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        chains.update([_chain(url, operator)])
        print(*(line for line in (tmp_path / "controller.log").read_text().splitlines() if " live: " in line))
        assert list(chains.values()) == [
            ["ingest", "filter", "distribute"],
            ["ingest", "classify", "filter", "distribute"],
            ["ingest", "classify", "solar", "filter", "distribute"],
            ["ingest", "classify", "solar", "filter"],
            ["ingest", "solar", "filter"],
        ]
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "every alert to be stored")

        # Stored once each.
        assert store_number(tmp_path, "SELECT count(*) FROM alerts") == alerts
        assert store_number(tmp_path, "SELECT count(DISTINCT alert_id) FROM alerts") == alerts
        # Delivered once each to a topic that keeps whatever it is given.
        delivered = _delivered(kafka_bootstrap, f"{prefix}.filter.everything", alerts)
        ids = [alert_id for alert_id, _, _ in delivered]
        assert len(ids) == len(set(ids)) == alerts
        # Each alert passed the chain that was live when it passed, every stage once, in order: the
        # newest pipeline version among its stages' names that chain.
        passed: Counter[str] = Counter()
        through: Counter[int] = Counter()
        for alert_id, provenance, _ in delivered:
            stages = [key for key in provenance if "." not in key]
            live = max(version for key, version in provenance.items() if key.endswith(".pipeline"))
            assert stages == chains[live], (alert_id, provenance)
            passed.update(stages)
            through[live] += 1
        # The store keeps each alert's provenance as its delivery carried it.
        with sqlite3.connect(tmp_path / "starling.db", timeout=30) as db:
            kept = {int(a): json.loads(p) for a, p in db.execute("SELECT alert_id, provenance FROM alerts")}
        assert kept == {alert_id: provenance for alert_id, provenance, _ in delivered}
        # Every shape carried alerts: each reshape was made while they flowed.
        print("alerts through each shape:", dict(sorted(through.items())))
        assert all(through[version] > 100 for version in chains), through
        assert passed["solar"] > 500
        passed_classify = passed["classify"]
        features = "SELECT count(DISTINCT alert_id) FROM annotations WHERE annotator = 'lc-features'"
        assert store_number(tmp_path, features) == passed_classify > 500
        # The output never stopped for long: the longest gap between two deliveries, reshapes included.
        times = sorted(at for _, _, at in delivered)
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        longest = gaps[-1]
        print(
            f"longest pause in the output: {longest:.2f} s; the five longest:",
            [round(g, 2) for g in gaps[-5:]],
        )
        assert longest < 30
    finally:
        controller.stop()
