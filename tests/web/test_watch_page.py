"""The portal's "My watchlists" page and its API (``/api/my/watchlists``, ``/api/my/watchmaps``).

The API alone: no token is a 401, a change from another site's page a 403, no controller a 404 and an
unreachable one a 503; with a real controller, its answers and refusals pass through (another user's
list is not seen, its name is refused, a bad body is a 422 naming the field). The page in a real
headless Chromium, signed in with a user's token of a real controller: a watchlist read from a CSV file
whose targets are named to break a page that pastes text as HTML is shown as text, a watchmap uploaded
as a MOC FITS file, both removed, each step checked against the controller itself.

The controller is the real one (its API, state, tokens and the ingest stage's watch annotators'
configs) over a backend that starts no worker: a watchlist is kept in the pipeline's desired state
whether or not workers run, so these tests need no Kafka. Screenshots are kept in ``var/screenshots``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import httpx
import pytest
from fastapi.testclient import TestClient
from mocpy import MOC
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from starling.control.api.app import controller_app
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.server import BackgroundServer
from starling.control.state import ControllerState, DesiredPipeline
from starling.web.app import close_web_app, web_app
from tests.support.browser import screenshot, sign_in
from tests.support.kafka import chain_spec

HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
# A quoted CSV field: a comma, doubled quotes and markup in one name.
QUOTED = 'M31, "the" <b>nebula</b>'
CSV = (
    "name,ra,dec,radius_arcsec\n"
    f"{HOSTILE[0]},150.1,2.2,1.5\n"
    f"{HOSTILE[1]},150.2,2.3,\n"
    '"M31, ""the"" <b>nebula</b>",10.6847,41.269,\n'
)
DESCRIPTION = "<img src=x onerror=alert(2)> the northern cap"


@dataclass
class Idle:
    """A controller answering at ``url``; ``token(user)`` makes a user's token as ``starling token
    create`` does."""

    url: str
    state: ControllerState

    def token(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.state.create_token('user', user)}"}


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idle]:
    work = tmp_path_factory.mktemp("watch-controller")
    spec = chain_spec("127.0.0.1:1", "watchpage", 0)  # never contacted: no worker is started
    state = ControllerState(work / "starling.db")
    running = Controller(state, LocalBackend(spec, work), DesiredPipeline(spec=spec))
    server = BackgroundServer(controller_app(running))
    try:
        yield Idle(f"http://127.0.0.1:{server.start()}", state)
    finally:
        server.stop()
        running.close()
        state.close()


@contextmanager
def _service(folder: Path, controller_url: str | None) -> Iterator[TestClient]:
    app = web_app(folder / "none.db", folder / "jobs", controller_url=controller_url)
    try:
        yield TestClient(app)
    finally:
        close_web_app(app)


def _watchlist(name: str, *targets: tuple[str, float, float]) -> dict[str, Any]:
    return {"name": name, "targets": [{"name": n, "ra": ra, "dec": dec} for n, ra, dec in targets]}


ROUTES = (
    ("GET", "/api/my/watchlists", None),
    ("PUT", "/api/my/watchlists/mine", _watchlist("mine", ("t", 1.0, 2.0))),
    ("GET", "/api/my/watchlists/mine", None),
    ("DELETE", "/api/my/watchlists/mine", None),
    ("GET", "/api/my/watchmaps", None),
    ("PUT", "/api/my/watchmaps/mine", {"name": "mine", "kind": "moc-json", "moc": {"3": [1, 2]}}),
    ("DELETE", "/api/my/watchmaps/mine", None),
)


# ---- the API, without a browser ----------------------------------------------------------------------


def test_no_controller_is_a_404_and_no_token_a_401(tmp_path: Path) -> None:
    with _service(tmp_path, None) as client:
        for method, path, body in ROUTES:
            asked = client.request(method, path, json=body, headers={"Authorization": "Bearer someone"})
            assert asked.status_code == 404, (method, path, asked.text)
            assert "without a controller" in asked.json()["detail"]
            assert client.request(method, path, json=body).status_code == 401, (method, path)


def test_your_watchlists_need_your_token_and_this_sites_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARLING_TOKEN", "the-services-own")  # never a stand-in for a missing one
    token = {"Authorization": "Bearer someone"}
    # A controller nobody listens at: what the service answers when it cannot reach its controller.
    with _service(tmp_path, "http://127.0.0.1:9") as client:
        for method, path, body in ROUTES:
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
                assert client.request(method, path, json=body, headers=headers).status_code == 401
            if method != "GET":  # a change asked by another site's page, or an opaque one, is refused
                for origin in ("https://elsewhere.example", "null", "http://testserver.example"):
                    refused = client.request(method, path, json=body, headers={**token, "Origin": origin})
                    assert refused.status_code == 403, (method, path, origin)
            own = client.request(method, path, json=body, headers={**token, "Origin": "http://testserver"})
            assert own.status_code == 503, (method, path, own.text)
            assert "cannot be reached" in own.json()["detail"]
        assert client.delete("/api/my/watchlists/a.b", headers=token).status_code == 422
        assert client.post("/api/my/watchlists/mine", headers=token).headers["allow"] == "GET, PUT, DELETE"


def test_the_controllers_answers_and_refusals_pass_through(controller: Idle, tmp_path: Path) -> None:
    ada, bob = controller.token("ada"), controller.token("bob")
    with _service(tmp_path, controller.url) as client:
        body = _watchlist("ada-list", (HOSTILE[0], 10.0, 20.0), ("b", 11.0, -5.0))
        put = client.put("/api/my/watchlists/ada-list", headers=ada, json=body)
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "ada-list"
        assert put.json()["replaced"] is False
        kept = httpx.get(f"{controller.url}/watchlists/ada-list", headers=ada).json()
        assert [t["name"] for t in kept["targets"]] == [HOSTILE[0], "b"]
        assert client.get("/api/my/watchlists/ada-list", headers=ada).json() == kept
        assert client.get("/api/my/watchlists", headers=ada).json() == [
            {"name": "ada-list", "owner": "ada", "targets": 2, "default_radius_arcsec": 2.0}
        ]
        # Another user sees none of it, and may not take its name.
        assert client.get("/api/my/watchlists", headers=bob).json() == []
        assert client.get("/api/my/watchlists/ada-list", headers=bob).status_code == 404
        taken = client.put("/api/my/watchlists/ada-list", headers=bob, json=body)
        assert taken.status_code == 409
        assert "someone else" in taken.json()["detail"]
        assert client.delete("/api/my/watchlists/ada-list", headers=bob).status_code == 404
        # Refused before the controller is asked (the field named), and by the controller itself.
        wrong = _watchlist("ada-list", ("far", 10.0, 100.0))
        refused = client.put("/api/my/watchlists/ada-list", headers=ada, json=wrong)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "targets", 0, "dec"]
        other = client.put("/api/my/watchlists/other", headers=ada, json=body)
        assert other.status_code == 422
        assert "differ" in other.json()["detail"]
        unreadable = {"name": "m", "kind": "moc-fits", "fits_base64": "bm90IGZpdHM="}
        assert client.put("/api/my/watchmaps/m", headers=ada, json=unreadable).status_code == 422
        assert client.delete("/api/my/watchlists/ada-list", headers=ada).json()["deleted"] is True
        assert httpx.get(f"{controller.url}/watchlists", headers=ada).json() == []


# ---- the page, in a browser --------------------------------------------------------------------------


def _loaded(browser: Any) -> None:
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "yes"
    )


def _sign_in(browser: Any, base: str, token: str) -> None:
    browser.get(f"{base}/watch")
    _loaded(browser)
    assert browser.find_element(By.ID, "signed-out").is_displayed()
    assert not browser.find_element(By.ID, "upload-section").is_displayed()
    sign_in(browser, f"{base}/watch", token)
    assert browser.find_element(By.ID, "who").text == "signed in as alice"
    assert browser.find_element(By.ID, "lists-empty").is_displayed()
    assert browser.find_element(By.ID, "maps-empty").is_displayed()


def _type(browser: Any, element_id: str, text: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _row(browser: Any, table: str, name: str) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, f'#{table} tbody tr[data-name="{name}"]')
    return [str(cell.text) for cell in rows[0].find_elements(By.TAG_NAME, "td")] if rows else []


def _nothing_ran(browser: Any) -> None:
    """No user's text became markup, and none of it ran."""
    assert not browser.find_elements(By.CSS_SELECTOR, "main script, main img, main b")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018


def _upload_watchlist(browser: Any, controller: Idle, alice: dict[str, str], folder: Path) -> None:
    csv = folder / "targets.csv"
    csv.write_text(CSV)
    _type(browser, "list-name", "hostile-names")
    browser.find_element(By.ID, "list-file").send_keys(str(csv))
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "list-csv").get_property("value") == CSV)
    browser.find_element(By.ID, "list-upload").click()
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "targets-of").text == "hostile-names")
    assert "3 targets uploaded" in browser.find_element(By.ID, "list-status").text
    assert _row(browser, "lists", "hostile-names")[:4] == ["hostile-names", "alice", "3", "2"]
    cells = browser.find_elements(By.CSS_SELECTOR, "#targets tbody tr td:first-child")
    assert [cell.text for cell in cells] == [*HOSTILE, QUOTED]  # each name is its text, as typed
    assert [cell.get_property("innerHTML") for cell in cells][:1] == ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    radii = browser.find_elements(By.CSS_SELECTOR, "#targets tbody tr td:last-child")
    assert [cell.text for cell in radii] == ["1.5", "2", "2"]  # a target's own, else the list's
    _nothing_ran(browser)
    kept = httpx.get(f"{controller.url}/watchlists/hostile-names", headers=alice).json()
    assert [(t["name"], t["ra"], t["dec"]) for t in kept["targets"]] == [
        (HOSTILE[0], 150.1, 2.2),
        (HOSTILE[1], 150.2, 2.3),
        (QUOTED, 10.6847, 41.269),
    ]
    assert kept["targets"][0]["radius_arcsec"] == 1.5
    assert "radius_arcsec" not in kept["targets"][1] or kept["targets"][1]["radius_arcsec"] is None


def _upload_watchmap(browser: Any, controller: Idle, alice: dict[str, str], folder: Path) -> None:
    region = MOC.from_cone(lon=0 * u.deg, lat=90 * u.deg, radius=20 * u.deg, max_depth=6)
    fits = folder / "north-cap.fits"
    region.save(str(fits), format="fits")
    cells = sum(len(c) for c in region.serialize(format="json").values())
    _type(browser, "map-name", "north-cap")
    Select(browser.find_element(By.ID, "map-kind")).select_by_value("moc-fits")
    browser.find_element(By.ID, "map-file").send_keys(str(fits))
    _type(browser, "map-description", DESCRIPTION)
    browser.find_element(By.ID, "map-upload").click()
    WebDriverWait(browser, 60).until(lambda b: _row(b, "maps", "north-cap"))
    assert _row(browser, "maps", "north-cap")[:4] == ["north-cap", "alice", str(cells), DESCRIPTION]
    _nothing_ran(browser)
    kept = httpx.get(f"{controller.url}/watchmaps", headers=alice).json()
    assert kept == [{"name": "north-cap", "owner": "alice", "description": DESCRIPTION, "cells": cells}]


def _remove(browser: Any, table: str, name: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f'#{table} tr[data-name="{name}"] [data-action="remove"]').click()
    browser.switch_to.alert.accept()
    WebDriverWait(browser, 60).until(lambda b: not _row(b, table, name))


def test_watchlists_and_watchmaps_uploaded_shown_as_text_and_removed_in_the_page(
    browser: Any, controller: Idle, tmp_path: Path
) -> None:
    alice = controller.token("alice")
    app = web_app(tmp_path / "none.db", tmp_path / "jobs", controller_url=controller.url)
    server = BackgroundServer(app)
    try:
        base = f"http://127.0.0.1:{server.start()}"
        _sign_in(browser, base, alice["Authorization"].split()[1])
        _upload_watchlist(browser, controller, alice, tmp_path)
        _upload_watchmap(browser, controller, alice, tmp_path)
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, "watch")
        _remove(browser, "lists", "hostile-names")
        assert not browser.find_element(By.ID, "targets-section").is_displayed()
        assert httpx.get(f"{controller.url}/watchlists", headers=alice).json() == []
        _remove(browser, "maps", "north-cap")
        assert httpx.get(f"{controller.url}/watchmaps", headers=alice).json() == []
        assert browser.find_element(By.ID, "lists-empty").is_displayed()
        assert browser.find_element(By.ID, "maps-empty").is_displayed()
        assert not browser.find_element(By.ID, "problem").is_displayed()
    finally:
        server.stop()
        close_web_app(app)
