"""The controller, as an operator uses it: over real HTTP, with tokens, real workers on a real Kafka."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess, ctl
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, store_count

pytestmark = pytest.mark.kafka


def test_the_controller_reshapes_a_running_pipeline(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    alerts = 3000
    spec = chain_spec(kafka_bootstrap, prefix, alerts)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        operator = controller.operator
        url = controller.url

        # Access: no token 401, a wrong one 401, a user token may read but not change.
        assert httpx.get(f"{url}/pipeline").status_code == 401
        assert httpx.get(f"{url}/pipeline", headers={"Authorization": "Bearer nope"}).status_code == 401
        user = controller.user_token("ada")
        assert httpx.get(f"{url}/pipeline", headers=user).status_code == 200
        forbidden = httpx.post(
            f"{url}/stages/ingest/components", json={"use": "history-summary", "name": "B"}, headers=user
        )
        assert forbidden.status_code == 403
        assert httpx.get(f"{url}/health").json()["status"] == "ok"  # probes need no token

        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [s["name"] for s in view["stages"]] == ["ingest", "filter", "distribute"]
        assert [c["use"] for c in view["stages"][0]["components"]] == ["history-summary"]
        assert all(s["replicas"] == 1 and len(s["workers"]) == 1 for s in view["stages"])

        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 600.0})
        feeder.start()
        wait_until(lambda: store_count(tmp_path) > 300, 90, "the stream to flow")
        added = httpx.post(
            f"{url}/stages/ingest/components", json={"use": "history-summary", "name": "B"}, headers=operator
        )
        assert added.status_code == 201
        refused = httpx.patch(
            f"{url}/stages/filter/components/bright", json={"config": {"max_mag": "faint"}}, headers=operator
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["bright", "max_mag"]
        assert (
            httpx.patch(
                f"{url}/stages/filter/components/bright", json={"config": {"max_mag": 18.0}}, headers=operator
            ).status_code
            == 200
        )
        reordered = httpx.put(
            f"{url}/stages/ingest/order", json={"components": ["B", "history-summary"]}, headers=operator
        )
        assert reordered.status_code == 200
        view = httpx.get(f"{url}/pipeline", headers=operator).json()
        assert [c["name"] or c["use"] for c in view["stages"][0]["components"]] == ["B", "history-summary"]
        partial = httpx.put(f"{url}/stages/ingest/order", json={"components": ["B"]}, headers=operator)
        assert partial.status_code == 422

        # The same through the command line client.
        shown = ctl("show", url=url, token=operator["Authorization"].split()[1])
        assert shown.returncode == 0
        assert "ingest" in shown.stdout
        assert "history-summary" in shown.stdout
        denied = ctl("remove", "ingest", "B", url=url, token=user["Authorization"].split()[1])
        assert denied.returncode == 1
        assert "refused (403)" in denied.stderr
        assert (
            ctl(
                "config",
                "filter",
                "bright",
                '{"max_mag": 18.5}',
                url=url,
                token=operator["Authorization"].split()[1],
            ).returncode
            == 0
        )
        assert httpx.delete(f"{url}/stages/ingest/components/nope", headers=operator).status_code == 404
        assert (
            httpx.delete(f"{url}/stages/ingest/components/history-summary", headers=operator).status_code
            == 200
        )

        # Two filter replicas, then a worker killed: the supervisor brings it back.
        assert (
            httpx.put(f"{url}/stages/filter/replicas", json={"replicas": 2}, headers=operator).status_code
            == 200
        )
        wait_until(
            lambda: (
                len(
                    [
                        w
                        for w in httpx.get(f"{url}/pipeline", headers=operator).json()["stages"][1]["workers"]
                        if w["state"] == "running"
                    ]
                )
                == 2
            ),
            90,
            "a second filter replica",
        )
        ingest_port = httpx.get(f"{url}/pipeline", headers=operator).json()["stages"][0]["workers"][0]["url"]
        # This controller's own ingest worker (another test's, on the same machine, may run at the same time).
        own = f"{re.escape(str(tmp_path))}/.*ingest-0.port"
        found = subprocess.run(["pgrep", "-f", own], capture_output=True, text=True).stdout.split()
        assert len(found) == 1, found
        pid = int(found[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: httpx.get(f"{url}/status", headers=operator).json()["restarts"].get("ingest#0", 0) >= 1,
            60,
            "the killed worker to be restarted",
        )
        wait_until(
            lambda: (
                (w := httpx.get(f"{url}/pipeline", headers=operator).json()["stages"][0]["workers"][0])[
                    "state"
                ]
                == "running"
                and w["url"] != ingest_port
            ),
            90,
            "the restarted worker to run",
        )
        assert (
            httpx.put(f"{url}/stages/filter/replicas", json={"replicas": 1}, headers=operator).status_code
            == 200
        )
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 180, "every alert stored")
        assert store_count(tmp_path) == alerts
        version = httpx.get(f"{url}/pipeline", headers=operator).json()["version"]
    finally:
        controller.stop()

    # The desired pipeline comes back after a controller restart.
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        view = httpx.get(f"{controller.url}/pipeline", headers=operator).json()
        assert view["version"] == version
        assert [c["name"] for c in view["stages"][0]["components"]] == ["B"]
        assert view["stages"][1]["components"][0]["config"]["max_mag"] == 18.5  # set last, by the CLI
        assert view["stages"][1]["replicas"] == 1
    finally:
        controller.stop()
