"""Watchlists and watchmaps are read with an ETag, and a replacement or removal sent with it as If-Match
is refused (412) when the object changed meanwhile (another session of the owner, an operator), so no
one overwrites a change they never saw; without If-Match nothing is checked. A real controller in
process; no worker runs, so each change is live at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from starling.control.api.app import controller_app
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.state import ControllerState, DesiredPipeline
from tests.support.kafka import chain_spec

SPEC = chain_spec("127.0.0.1:1", "etags", 0)  # never contacted


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    state = ControllerState(tmp_path / "starling.db")
    ada = {"Authorization": f"Bearer {state.create_token('user', 'ada')}"}
    operator = {"Authorization": f"Bearer {state.create_token('operator', 'operator')}"}
    controller = Controller(state, LocalBackend(SPEC, tmp_path), DesiredPipeline(spec=SPEC))
    try:
        yield TestClient(controller_app(controller)), ada, operator
    finally:
        controller.close()
        state.close()


def _list(ra: float) -> dict[str, object]:
    return {"name": "mine", "targets": [{"name": "t", "ra": ra, "dec": 2.0}]}


def test_a_watchlist_changed_since_it_was_read_is_not_overwritten(
    api: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, ada, operator = api
    assert client.put("/watchlists/mine", headers=ada, json=_list(1.0)).status_code == 200
    read = client.get("/watchlists/mine", headers=ada)
    tag = read.headers["ETag"]
    assert client.get("/watchlists/mine", headers=ada).headers["ETag"] == tag  # stable while unchanged
    assert client.put("/watchlists/mine", headers=operator, json=_list(5.0)).status_code == 200  # meanwhile
    stale = client.put("/watchlists/mine", headers={**ada, "If-Match": tag}, json=_list(2.0))
    assert stale.status_code == 412
    assert "changed since you read it" in stale.json()["detail"]
    assert (
        client.get("/watchlists/mine", headers=ada).json()["targets"][0]["ra"] == 5.0
    )  # the operator's kept
    fresh = client.get("/watchlists/mine", headers=ada).headers["ETag"]
    assert fresh != tag
    assert (
        client.put("/watchlists/mine", headers={**ada, "If-Match": fresh}, json=_list(2.0)).status_code == 200
    )
    assert client.delete("/watchlists/mine", headers={**ada, "If-Match": fresh}).status_code == 412
    latest = client.get("/watchlists/mine", headers=ada).headers["ETag"]
    assert client.delete("/watchlists/mine", headers={**ada, "If-Match": latest}).status_code == 200
    gone = client.put("/watchlists/mine", headers={**ada, "If-Match": latest}, json=_list(3.0))
    assert gone.status_code == 412  # it was removed since: If-Match names a state that is no more


def test_a_watchmap_is_read_with_its_region_and_an_etag(
    api: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, ada, _ = api
    body = {"name": "field", "kind": "moc-json", "moc": {"3": [1, 2]}}
    assert client.put("/watchmaps/field", headers=ada, json=body).status_code == 200
    read = client.get("/watchmaps/field", headers=ada)
    assert read.status_code == 200
    assert read.json()["moc"] == {"3": [1, 2]}
    assert read.json()["owner"] == "ada"
    changed = {**body, "moc": {"3": [7]}}
    assert (
        client.put(
            "/watchmaps/field", headers={**ada, "If-Match": read.headers["ETag"]}, json=changed
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/watchmaps/field", headers={**ada, "If-Match": read.headers["ETag"]}, json=body
        ).status_code
        == 412
    )
    assert client.get("/watchmaps/nothing", headers=ada).status_code == 404
