"""Prometheus scrapes with a read-only token: with ``STARLING_METRICS_TOKEN`` set, a worker takes it for
``/metrics`` only (its ``/status`` shows users' filters) and the controller for ``/metrics`` and its
``/status``; both refuse it (403) for everything else, so the token a scrape holds (the Kubernetes
ServiceMonitor's) can change and see nothing else. It was the control token before."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from starling.control.api.app import controller_app
from starling.control.api.worker_app import worker_app
from starling.control.auth import METRICS_TOKEN_ENV, worker_authority
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.state import ControllerState, DesiredPipeline
from starling.deploy.kubernetes import DeploymentSettings, all_manifests
from starling.transport.kafka.worker import StageWorker
from tests.support.kafka import chain_spec

SPEC = chain_spec("127.0.0.1:1", "metrics", 0)  # never contacted
SCRAPE = "stl_read-only-scrape"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_worker_takes_the_metrics_token_for_reading_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(METRICS_TOKEN_ENV, SCRAPE)
    worker = StageWorker(SPEC, "filter", tmp_path)
    client = TestClient(worker_app(worker, worker_authority("stl_control")))
    scrape, control = _bearer(SCRAPE), _bearer("stl_control")
    assert client.get("/metrics", headers=scrape).status_code == 200
    # The status and the configuration show users' filters and webhook URLs: not a scrape's to read.
    assert client.get("/status", headers=scrape).status_code == 403
    assert client.get("/config", headers=scrape).status_code == 403
    assert client.get("/status", headers=control).status_code == 200
    components = client.get("/config", headers=control).json()["components"]
    assert client.put("/components", headers=scrape, json=components).status_code == 403
    assert client.post("/pause", headers=scrape).status_code == 403
    assert client.put("/components", headers=control, json=components).status_code == 200
    assert client.get("/metrics", headers=_bearer("stl_guess")).status_code == 401


def test_without_the_variable_there_is_no_metrics_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(METRICS_TOKEN_ENV, raising=False)
    worker = StageWorker(SPEC, "filter", tmp_path)
    client = TestClient(worker_app(worker, worker_authority("stl_control")))
    assert client.get("/metrics", headers=_bearer(SCRAPE)).status_code == 401


def test_the_controller_takes_it_for_reading_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_TOKEN_ENV, SCRAPE)
    state = ControllerState(tmp_path / "starling.db")
    controller = Controller(state, LocalBackend(SPEC, tmp_path), DesiredPipeline(spec=SPEC))
    try:
        client = TestClient(controller_app(controller))
        assert client.get("/metrics", headers=_bearer(SCRAPE)).status_code == 200
        assert client.get("/pipeline", headers=_bearer(SCRAPE)).status_code == 403
        body = {"name": "f", "expression": "mag < 18"}
        assert client.post("/filters", headers=_bearer(SCRAPE), json=body).status_code == 403
    finally:
        controller.close()
        state.close()


def test_the_servicemonitor_scrapes_with_the_metrics_token_every_pod_is_given() -> None:
    manifests = all_manifests(
        SPEC, DeploymentSettings(namespace="starling"), "stl_control", metrics_token=SCRAPE
    )
    secrets = {m["metadata"]["name"]: m["stringData"] for m in manifests if m["kind"] == "Secret"}
    # Apart: RBAC grants a Secret whole, so the scraper's may not hold the control token too.
    assert secrets["starling-metrics-token"] == {"token": SCRAPE}
    assert secrets["starling-control-token"] == {"token": "stl_control"}
    [monitor] = [m for m in manifests if m["kind"] == "ServiceMonitor"]
    credentials = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]
    assert credentials == {"name": "starling-metrics-token", "key": "token"}
    pods = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] != "starling-web"]
    assert pods
    for deployment in pods:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"]: e for e in container.get("env", [])}
        if "STARLING_CONTROL_TOKEN" in names:
            reference = names[METRICS_TOKEN_ENV]["valueFrom"]["secretKeyRef"]
            assert (reference["name"], reference["key"]) == ("starling-metrics-token", "token")
