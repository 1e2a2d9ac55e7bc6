"""A user's filter reads its own watchlists and watchmaps and the broker's, never another user's hits:
naming another's list is refused at the expression, and a name a user's filter reads is kept for that user
(no one else may take it later, which would let the filter read their hits). A real controller in process;
no worker runs, so each change is live at once. (What the store keeps of the hits, and who reads it, is in
``tests/web/test_access.py``.)"""

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

SPEC = chain_spec("127.0.0.1:1", "privacy", 0)  # never contacted
Headers = dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Headers, Headers, Headers]]:
    state = ControllerState(tmp_path / "starling.db")
    ada = {"Authorization": f"Bearer {state.create_token('user', 'ada')}"}
    bob = {"Authorization": f"Bearer {state.create_token('user', 'bob')}"}
    operator = {"Authorization": f"Bearer {state.create_token('operator', 'operator')}"}
    controller = Controller(state, LocalBackend(SPEC, tmp_path), DesiredPipeline(spec=SPEC))
    try:
        yield TestClient(controller_app(controller)), ada, bob, operator
    finally:
        controller.close()
        state.close()


def _list(name: str) -> dict[str, object]:
    return {"name": name, "targets": [{"name": "t", "ra": 1.0, "dec": 2.0}]}


def test_a_filter_may_not_read_another_users_watchlist_or_watchmap(
    api: tuple[TestClient, Headers, Headers, Headers],
) -> None:
    client, ada, bob, operator = api
    assert client.put("/watchlists/bobs", headers=bob, json=_list("bobs")).status_code == 200
    region = {"name": "bobmap", "kind": "moc-json", "moc": {"3": [1, 2]}}
    assert client.put("/watchmaps/bobmap", headers=bob, json=region).status_code == 200
    assert client.put("/watchlists/public", headers=operator, json=_list("public")).status_code == 200
    for expression in (
        "watchlists.bobs.target IS NOT NULL",
        "mag < 19 OR watchmaps.bobmap.inside = 1",
        "COALESCE(watchlists.bobs.dist_arcsec, 99) < 1",
    ):
        refused = client.post("/filters", headers=ada, json={"name": "peek", "expression": expression})
        assert refused.status_code == 422, refused.text
        problem = refused.json()["detail"][0]
        assert problem["loc"] == ["body", "expression"]
        assert "belongs to someone else" in problem["msg"]
    # Its own, the broker's, and (for an operator) anyone's.
    assert client.put("/watchlists/mine", headers=ada, json=_list("mine")).status_code == 200
    fine = "watchlists.mine.target IS NOT NULL OR watchlists.public.count > 0"
    assert client.post("/filters", headers=ada, json={"name": "ok", "expression": fine}).status_code == 201
    everyone = {"name": "all", "expression": "watchlists.bobs.target IS NOT NULL"}
    assert client.post("/filters", headers=operator, json=everyone).status_code == 201
    # Nor by changing a filter's expression.
    changed = client.patch("/filters/ok", headers=ada, json={"expression": "watchmaps.bobmap.inside = 1"})
    assert changed.status_code == 422
    assert client.get("/filters/ok", headers=ada).json()["expression"] == fine


def test_a_name_a_users_filter_reads_is_kept_for_that_user(
    api: tuple[TestClient, Headers, Headers, Headers],
) -> None:
    client, ada, bob, operator = api
    waiting = {"name": "later", "expression": "watchlists.soon.target IS NOT NULL"}
    assert client.post("/filters", headers=ada, json=waiting).status_code == 201
    taken = client.put("/watchlists/soon", headers=bob, json=_list("soon"))
    assert taken.status_code == 409
    assert "belongs to someone else" in taken.json()["detail"]
    assert client.put("/watchlists/soon", headers=ada, json=_list("soon")).status_code == 200
    # A map of that name is another thing; the name is kept for lists only.
    region = {"name": "soon", "kind": "moc-json", "moc": {"3": [1]}}
    assert client.put("/watchmaps/soon", headers=bob, json=region).status_code == 200
    # Once ada's filter no longer reads it, the name is free again (she still holds her list).
    assert client.delete("/filters/later", headers=ada).status_code == 200
    assert client.delete("/watchlists/soon", headers=ada).status_code == 200
    assert client.put("/watchlists/soon", headers=bob, json=_list("soon")).status_code == 200
    # Now bob's: ada's filter may not name it again.
    assert client.post("/filters", headers=ada, json=waiting).status_code == 422
    # The broker's own lists are public: an operator takes any name, and ada's filter reads it.
    public = {"name": "hers", "expression": "watchlists.broker.target IS NOT NULL"}
    assert client.post("/filters", headers=ada, json=public).status_code == 201
    assert client.put("/watchlists/broker", headers=operator, json=_list("broker")).status_code == 200


def test_a_name_in_another_case_is_the_same_name(api: tuple[TestClient, Headers, Headers, Headers]) -> None:
    """The filter language reads names without regard to case, so the checks do too."""
    client, ada, bob, _ = api
    assert client.put("/watchlists/Secret", headers=bob, json=_list("Secret")).status_code == 200
    for expression in (
        "watchlists.Secret.count > 0",
        "watchlists.secret.count > 0",
        "WATCHLISTS.SECRET.count > 0",
    ):
        refused = client.post("/filters", headers=ada, json={"name": "peek", "expression": expression})
        assert refused.status_code == 422, (expression, refused.text)
    # Nor may another name differ from it only in case; its owner's own list stays its owner's to change.
    assert client.put("/watchlists/secret", headers=ada, json=_list("secret")).status_code == 409
    assert client.put("/watchlists/SECRET", headers=bob, json=_list("SECRET")).status_code == 409
    assert client.put("/watchlists/Secret", headers=bob, json=_list("Secret")).status_code == 200
    waiting = {"name": "later", "expression": "watchlists.later.target IS NOT NULL"}
    assert client.post("/filters", headers=ada, json=waiting).status_code == 201
    assert client.put("/watchlists/Later", headers=bob, json=_list("Later")).status_code == 409
    assert client.put("/watchlists/later", headers=ada, json=_list("later")).status_code == 200
