"""The ExecutionBroker's endpoints on the controller, in process (no worker is started): JSON and YAML,
YES and NO with reasons, accept and its siblings, illegal updates, and each user's own only."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from starling.control.api.app import controller_app
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.state import ControllerState, DesiredPipeline
from starling.vo.execbroker.ledger import Capacity, Ledger
from starling.vo.execbroker.model import DOCKER_CONTAINER, STARLING_COMPONENT
from tests.support.kafka import chain_spec

ACCEPT = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}


@pytest.fixture(scope="module")
def served() -> Any:
    scratch = Path(tempfile.mkdtemp(prefix="starling-eb-"))
    spec = chain_spec("127.0.0.1:1", "eb", 10)  # never contacted: offers need no broker
    state = ControllerState(scratch / "controller" / "starling.db")
    controller = Controller(state, LocalBackend(spec, scratch / "controller"), DesiredPipeline(spec=spec))
    controller.broker.ledger = Ledger(Capacity(cores=4, memory_gib=8))
    tokens = {user: state.create_token("user", user) for user in ("ada", "bob")}
    with TestClient(controller_app(controller)) as client:
        yield client, {u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()}
    controller.close()


def _request(
    component: str = "lc-features", config: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "executable": {"kind": STARLING_COMPONENT, "component": component, "config": config or {}, **extra},
        "schedule": {"requested": {"duration": "PT10M"}},
        "compute": {
            "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/compute/simple-compute-resource-1.0",
            "cores": {"min": 1, "max": 2},
            "memory": {"min": 1, "max": 2},
        },
    }


def test_yaml_by_default_json_when_asked(served: Any) -> None:
    client, users = served
    asked = client.post(
        "/offersets",
        content=yaml.safe_dump(_request()),
        headers={**users["ada"], "Content-Type": "application/yaml"},
    )
    assert asked.status_code == 200, asked.text
    assert asked.headers["content-type"].startswith("application/yaml")
    offerset = yaml.safe_load(asked.text)
    assert offerset["result"] == "YES"  # a string, quoted in YAML: not read back as true
    assert asked.headers["location"] == offerset["meta"]["url"]
    assert len(offerset["offers"]) == 4
    offer = offerset["offers"][0]
    assert offer["phase"] == "OFFERED"
    assert offer["compute"]["cores"] == {"min": 2, "max": 2}
    assert offer["meta"]["options"] == [
        {"kind": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}
    ]
    as_json = client.get(
        f"/offersets/{offerset['meta']['uuid']}", headers={**users["ada"], "Accept": "application/json"}
    )
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["meta"]["uuid"] == offerset["meta"]["uuid"]


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        (_request("threshold", {"max_mag": "bright"}), "executable.config.max_mag"),
        (_request("no-such-component"), "executable.component"),
        (_request("replay"), "is a source"),
        (_request(beside="distribute"), "executable.beside"),
        (_request("store"), "a session writes only files of its own"),
        (_request("files", {"directory": "/etc"}), "executable.config.directory"),
        (_request("files", {"directory": "../up"}), "executable.config.directory"),
        (_request("watchlists"), "kept in the chain's first stage"),
        (
            {"executable": {"kind": DOCKER_CONTAINER, "image": {"locations": ["docker.io/x"]}}},
            "no container engine",
        ),
    ],
)
def test_what_cannot_run_here_is_a_no_saying_why(served: Any, request_: dict[str, Any], said: str) -> None:
    client, users = served
    answer = client.post("/offersets", json=request_, headers={**users["ada"], "Accept": "application/json"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] == "NO"
    assert body["offers"] == []
    assert any(said in m["message"] for m in body["meta"]["messages"]), body["meta"]["messages"]


def test_accept_one_the_others_are_rejected_and_illegal_updates_are_refused(served: Any) -> None:
    client, users = served
    json_ = {**users["ada"], "Accept": "application/json"}
    offers = client.post("/offersets", json=_request(), headers=json_).json()["offers"]
    chosen, *others = (o["meta"]["uuid"] for o in offers)
    accepted = client.post(f"/sessions/{chosen}", json=ACCEPT, headers=json_)
    assert accepted.json()["phase"] == "ACCEPTED"
    assert [client.get(f"/sessions/{o}", headers=json_).json()["phase"] for o in others] == ["REJECTED"] * 3
    again = client.post(f"/sessions/{others[0]}", json=ACCEPT, headers=json_)
    assert again.status_code == 409
    assert "REJECTED: it may become nothing" in again.json()["detail"]
    nonsense = client.post(
        f"/sessions/{chosen}",
        json={"kind": "uri:string-value-update", "path": "name", "value": "x"},
        headers=json_,
    )
    assert nonsense.status_code == 409
    assert client.post(f"/sessions/{chosen}", content=b"{not: [valid", headers=json_).status_code == 400
    mine = client.get("/sessions", headers=json_).json()
    assert chosen in [s["meta"]["uuid"] for s in mine]


def test_a_user_sees_only_their_own(served: Any) -> None:
    client, users = served
    offerset = client.post(
        "/offersets", json=_request(), headers={**users["ada"], "Accept": "application/json"}
    ).json()
    bob = {**users["bob"], "Accept": "application/json"}
    assert client.get(f"/offersets/{offerset['meta']['uuid']}", headers=bob).status_code == 404
    session = offerset["offers"][0]["meta"]["uuid"]
    assert client.get(f"/sessions/{session}", headers=bob).status_code == 404
    assert client.post(f"/sessions/{session}", json=ACCEPT, headers=bob).status_code == 404
    assert session not in [s["meta"]["uuid"] for s in client.get("/sessions", headers=bob).json()]
    assert client.post("/offersets", json=_request()).status_code == 401
    assert httpx.codes.is_success(client.get("/sessions", headers=bob).status_code)


def test_bodies_that_could_harm_the_controller_are_refused(served: Any) -> None:
    client, users = served
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    aliased = client.post(
        "/offersets", content=bomb, headers={**users["ada"], "Content-Type": "application/yaml"}
    )
    assert aliased.status_code == 400
    assert "aliases" in aliased.text
    deep = "[" * 200 + "]" * 200
    nested = client.post("/offersets", content='{"executable": ' + deep + "}", headers=users["ada"])
    assert nested.status_code == 400
    weird = {
        "executable": {"kind": ["not", "a", "string"]},
        "schedule": {"requested": {"duration": "P99999999999D"}},
    }
    answer = client.post("/offersets", json=weird, headers={**users["ada"], "Accept": "application/json"})
    assert answer.status_code == 200
    texts = [m["message"] for m in answer.json()["meta"]["messages"]]
    assert any("a kind is a URI" in t for t in texts), texts
    assert any("schedule.requested.duration" in t for t in texts), texts


def test_vosi_names_the_broker_and_says_it_is_available(served: Any) -> None:
    client, _ = served
    capabilities = ElementTree.fromstring(client.get("/capabilities").text)
    urls = {
        capability.get("standardID"): capability.findtext("interface/accessURL")
        for capability in capabilities.iter("capability")
    }
    assert urls["ivo://ivoa.net/std/ExecutionBroker"] == "http://testserver/offersets"
    assert urls["ivo://ivoa.net/std/VOSI#availability"] == "http://testserver/availability"
    availability = client.get("/availability")
    assert availability.status_code == 200
    assert "<vosi:available>true</vosi:available>" in availability.text
