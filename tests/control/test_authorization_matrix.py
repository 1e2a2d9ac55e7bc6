"""Every route of the controller, as served (its OpenAPI document), against every kind of caller.

The policy of each route is written down here once; a route that nobody listed fails the test, so a
new route cannot ship without a decision on who may call it. Callers: no token, a metrics token, the
workers' own secret (read from a running worker's environment), the owner of the object a route names,
another user, an operator.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from starling.vo.execbroker.model import STARLING_COMPONENT
from tests.support.controller import ControllerProcess
from tests.support.kafka import chain_spec

pytestmark = pytest.mark.kafka

POLICY: dict[tuple[str, str], str] = {
    ("get", "/health"): "public",
    ("get", "/ready"): "public",
    ("get", "/availability"): "public",
    ("get", "/capabilities"): "public",
    ("get", "/status"): "scraper",
    ("get", "/metrics"): "scraper",
    ("get", "/whoami"): "scraper",
    ("get", "/pipeline"): "member",
    ("get", "/autoscaler"): "member",
    ("get", "/filters"): "member",
    ("post", "/filters"): "member",
    ("post", "/try-filter"): "member",
    ("get", "/watchlists"): "member",
    ("get", "/watchmaps"): "member",
    ("get", "/tokens"): "member",
    ("get", "/kafka-credentials"): "member",  # each caller's own (here: not configured, a 409)
    ("post", "/kafka-credentials"): "member",
    ("delete", "/kafka-credentials"): "member",
    ("get", "/filters/{name}"): "owner",
    ("patch", "/filters/{name}"): "owner",
    ("delete", "/filters/{name}"): "owner",
    ("post", "/filters/{name}/pause"): "owner",
    ("post", "/filters/{name}/resume"): "owner",
    ("get", "/watchlists/{name}"): "owner",
    ("put", "/watchlists/{name}"): "owner",
    ("delete", "/watchlists/{name}"): "owner",
    ("get", "/watchmaps/{name}"): "owner",
    ("put", "/watchmaps/{name}"): "owner",
    ("delete", "/watchmaps/{name}"): "owner",
    ("delete", "/tokens/{token_id}"): "owner",
    ("post", "/tokens"): "operator",
    ("get", "/stages/{stage}/workers"): "operator",
    ("post", "/stages/{stage}/components"): "operator",
    ("delete", "/stages/{stage}/components/{name}"): "operator",
    ("patch", "/stages/{stage}/components/{name}"): "operator",
    ("put", "/stages/{stage}/order"): "operator",
    ("put", "/stages/{stage}/replicas"): "operator",
    ("put", "/stages/{stage}/autoscaling"): "operator",
    ("delete", "/stages/{stage}/autoscaling"): "operator",
    ("post", "/stages"): "operator",
    ("delete", "/stages/{stage}"): "operator",  # filter: refused (it holds the filters), nothing drained
    ("post", "/stages/{stage}/split"): "operator",
    ("post", "/stages/{stage}/fuse"): "operator",
    ("get", "/shape"): "member",
    ("put", "/shape"): "operator",
    ("delete", "/shape"): "operator",
    ("get", "/bodies/{digest}"): "bodies",  # the workers' and an operator's
    ("post", "/offersets"): "member",
    ("get", "/sessions"): "member",
    ("get", "/offersets/{uuid}"): "owner",
    ("get", "/sessions/{uuid}"): "owner",
    ("post", "/sessions/{uuid}"): "owner",
}

# What an owner's object is called, and a body each writing route takes from its owner.
OWNED = {"filters": "ada-f", "watchlists": "ada-l", "watchmaps": "ada-m"}
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/filters"): {"name": "new-one", "expression": "mag < 19"},
    ("patch", "/filters/{name}"): {"description": "changed"},
    ("post", "/try-filter"): {"expression": "mag < 19", "limit": 10},
    ("put", "/watchlists/{name}"): {"name": "ada-l", "targets": [{"name": "t", "ra": 1.0, "dec": 2.0}]},
    ("put", "/watchmaps/{name}"): {"name": "ada-m", "kind": "moc-json", "moc": {"3": [1, 2]}},
    ("post", "/tokens"): {"role": "user", "user": "eve"},
    ("post", "/offersets"): {"executable": {"kind": STARLING_COMPONENT, "component": "lc-features"}},
    ("post", "/sessions/{uuid}"): {"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"},
}


@pytest.fixture(scope="module")
def controller(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    work = tmp_path_factory.mktemp("matrix")
    pipeline = work / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, f"matrix{work.name[-6:]}", 0).model_dump_json())
    running = ControllerProcess(pipeline, work)
    try:
        yield running
    finally:
        running.stop()


def _callers(controller: ControllerProcess) -> dict[str, dict[str, str]]:
    made = httpx.post(
        f"{controller.url}/tokens",
        headers=controller.operator,
        json={"role": "metrics", "user": "prometheus"},
    )
    metrics = {"Authorization": f"Bearer {made.json()['token']}"}
    return {
        "none": {},
        "metrics": metrics,
        "worker": {"Authorization": f"Bearer {_worker_secret(controller)}"},
        "other": controller.user_token("bob"),
        "owner": controller.user_token("ada"),
        "operator": controller.operator,
    }


def _worker_secret(controller: ControllerProcess) -> str:
    """The secret the controller handed its workers, as its ingest worker holds it."""
    own = f"{re.escape(str(controller.output))}/.*ingest-0.port"
    found = subprocess.run(["pgrep", "-f", own], capture_output=True, text=True, check=False).stdout.split()
    assert len(found) == 1, found
    environment = Path(f"/proc/{found[0]}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in environment if v.startswith(b"STARLING_CONTROL_TOKEN="))


def _objects_of_the_owner(controller: ControllerProcess, owner: dict[str, str]) -> str:
    """Ada's filter, watchlist and watchmap exist again; a fresh token id of hers to revoke."""
    url = controller.url
    httpx.post(f"{url}/filters", headers=owner, json={"name": "ada-f", "expression": "mag < 18"})
    httpx.put(f"{url}/watchlists/ada-l", headers=owner, json=BODIES[("put", "/watchlists/{name}")])
    httpx.put(f"{url}/watchmaps/ada-m", headers=owner, json=BODIES[("put", "/watchmaps/{name}")])
    made = httpx.post(f"{url}/tokens", headers=controller.operator, json={"role": "user", "user": "ada"})
    if "offersets" not in OWNED:  # her offer set and its first offer (a session), once: offers hold capacity
        asked = httpx.post(
            f"{url}/offersets",
            headers={**owner, "Accept": "application/json"},
            json=BODIES[("post", "/offersets")],
        ).json()
        assert asked["result"] == "YES", asked
        OWNED["offersets"], OWNED["sessions"] = asked["meta"]["uuid"], asked["offers"][0]["meta"]["uuid"]
    return str(made.json()["id"])


def _concrete(path: str, token_id: str) -> str:
    kind = path.split("/")[1]
    path = path.replace("{stage}", "filter").replace("{token_id}", token_id)
    path = path.replace("{digest}", "sha256:" + "0" * 64)
    path = path.replace("{uuid}", OWNED.get(kind, "no-such-uuid"))
    return path.replace("{name}", OWNED.get(kind, "no-such-component"))


def _allowed(policy: str, caller: str, status: int) -> bool:
    """Whether ``status`` is the safe outcome of ``caller`` on a route of ``policy``."""
    refused = status in (401, 403)
    if policy == "public":
        return not refused
    if caller == "none":
        return status == 401
    if policy == "bodies":
        return not refused if caller in ("worker", "operator") else status == 403
    if caller == "worker":
        return status == 403
    if policy == "scraper":
        return not refused
    if caller == "metrics":
        return status == 403
    if policy == "operator":
        return status == 403 if caller in ("owner", "other") else not refused
    if policy == "owner" and caller == "other":
        return status in (404, 409)  # as if it did not exist; a name taken is refused, never taken over
    return not refused and not (policy == "owner" and caller == "owner" and status == 404)


def test_every_route_answers_each_caller_as_its_policy_says(controller: ControllerProcess) -> None:
    served = httpx.get(f"{controller.url}/openapi.json").json()["paths"]
    routes = [(method, path) for path, methods in served.items() for method in methods]
    assert sorted(set(routes) - set(POLICY)) == [], "routes with no policy: add them to POLICY"
    callers = _callers(controller)
    wrong = []
    for method, path in sorted(routes):
        token_id = _objects_of_the_owner(controller, callers["owner"])
        for caller in ("none", "metrics", "worker", "other", "owner", "operator"):
            response = httpx.request(
                method.upper(),
                f"{controller.url}{_concrete(path, token_id)}",
                headers=callers[caller],
                json=BODIES.get((method, path)),
                timeout=60,
            )
            if not _allowed(POLICY[(method, path)], caller, response.status_code):
                wrong.append(
                    f"{method.upper()} {path} as {caller}: {response.status_code} {response.text[:120]}"
                )
    assert wrong == []


def test_no_route_is_served_beyond_the_document(controller: ControllerProcess) -> None:
    """The interactive documents FastAPI adds are the only routes outside the OpenAPI document."""
    served = httpx.get(f"{controller.url}/openapi.json").json()["paths"]
    assert all(re.fullmatch(r"/[a-z{}_/-]*", path) for path in served)
    assert httpx.get(f"{controller.url}/no-such-route").status_code == 404
