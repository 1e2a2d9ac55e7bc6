"""The portal's "My filters" page and its API. The API alone: the fields, a check naming a fault's line
and column as the controller would, a trial counted as the store's own SQL counts it, and the proxy's
refusals (no token, a page of another site, no controller). The page in a real headless Chromium, signed
in with a token of a real controller that runs the pipeline over a real Kafka: a fault shown at its line
and column, the trial, the filter made live, its matches appearing as the stream is stored, paused and
removed, each reflected by the controller. Screenshots are kept in ``var/screenshots``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from starling.adql.fields import catalogue
from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.alert.decoder import AlertDecoder
from starling.control.server import BackgroundServer
from starling.core.spec import PipelineSpec
from starling.store.open import open_store
from starling.web.app import close_web_app, web_app
from tests.support.browser import screenshot, sign_in
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_alerts, synthetic_messages, wait_until
from tests.support.kafka import chain_spec, send_raw, store_count

HOSTILE = "<img src=x onerror=alert(1)>"
# A fault on the second line, after a user's text that a page pasting HTML would run.
FAULTY = f"mag < 19 AND\n  object_id <> '{HOSTILE}' AND decl > 0"
FIXED = f"mag < 19 AND\n  object_id <> '{HOSTILE}' AND dec > 0"
SQL_CONDITION = "mag < 19 AND object_id <> ? AND dec > 0"  # the same condition in the store's SQL
CHANGED = "mag < 18.5 AND dec > 0"  # a change of the live filter, written in the page


def _fault(expression: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as caught:
        compile_filter(expression)
    return caught.value


# ---- the API, without a browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    folder = tmp_path_factory.mktemp("filters-api")
    location = str(folder / "s.db")
    store = open_store(location)
    try:
        store.write(list({a.key: a for a in synthetic_alerts(900, objects=120, seed=21)}.values()), {})
    finally:
        store.close()
    # A controller nobody listens at: what the service answers when it cannot reach its controller.
    app = web_app(location, folder / "jobs", controller_url="http://127.0.0.1:9")
    try:
        yield TestClient(app), location
    finally:
        close_web_app(app)


def _latest_count(location: str, limit: int) -> int:
    """The store's own SQL count of the condition among its latest ``limit`` alerts."""
    with sqlite3.connect(location) as db:
        latest = f"SELECT * FROM alerts ORDER BY mjd DESC, survey, alert_id LIMIT {int(limit)}"
        return int(
            db.execute(f"SELECT count(*) FROM ({latest}) WHERE {SQL_CONDITION}", (HOSTILE,)).fetchone()[0]
        )


def test_the_fields_are_the_filter_languages(api: tuple[TestClient, str]) -> None:
    client, _ = api
    listed = client.get("/api/fields").json()
    names = [f["name"] for f in listed]
    assert len(names) == len(set(names))
    assert not [n for n in names if "-" in n]  # each annotator's field once, under its unquoted alias
    known = {f.name: f for f in catalogue().all()}
    for field in listed:
        found = known[field["name"]]
        assert (field["type"], field["unit"], field["description"]) == (
            found.type,
            found.unit,
            found.description,
        )
    assert {"mag", "ndethist", "history_summary.peak_mag"} <= set(names)
    assert names[0] == "survey"  # the built-in fields first


def test_a_check_names_the_faults_line_and_column(api: tuple[TestClient, str]) -> None:
    client, _ = api
    fault = _fault(FAULTY)
    checked = client.post("/api/filters/check", json={"expression": FAULTY}).json()
    assert checked == {"ok": False, "message": fault.message, "line": 2, "column": fault.column}
    assert "did you mean dec" in checked["message"]
    assert client.post("/api/filters/check", json={"expression": FIXED}).json() == {"ok": True}
    syntax = client.post("/api/filters/check", json={"expression": "mag < 19 AND AND"}).json()
    assert (syntax["line"], syntax["column"]) == (1, 14)
    assert client.post("/api/filters/check", json={"expression": ""}).status_code == 422


def test_a_trial_counts_what_the_stores_sql_counts(api: tuple[TestClient, str]) -> None:
    client, location = api
    tried = client.post("/api/filters/try", json={"expression": FIXED, "limit": 400, "sample": 5})
    assert tried.status_code == 200, tried.text
    result = tried.json()
    assert result["alerts_examined"] == 400
    assert result["matched"] == _latest_count(location, 400) > 0
    assert result["fraction"] == round(result["matched"] / 400, 6)
    assert len(result["sample"]) == 5
    assert set(result["sample"][0]) == {"survey", "alert_id", "object_id", "mjd"}
    assert "starling.alert_fields" in result["query"]
    refused = client.post("/api/filters/try", json={"expression": FAULTY})
    assert refused.status_code == 422
    assert (refused.json()["detail"][0]["line"], refused.json()["detail"][0]["column"]) == (
        2,
        _fault(FAULTY).column,
    )
    assert client.post("/api/filters/try", json={"expression": "mag < 19", "limit": 0}).status_code == 422


def test_your_filters_need_your_token_and_this_sites_pages(
    api: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = api
    # The service's own token is never a stand-in for a missing one.
    monkeypatch.setenv("STARLING_TOKEN", "the-services-own")
    token = {"Authorization": "Bearer someone"}
    for method, path in (
        ("GET", "/api/my/filters"),
        ("POST", "/api/my/filters"),
        ("PATCH", "/api/my/filters/bright"),
        ("POST", "/api/my/filters/bright/pause"),
        ("POST", "/api/my/filters/bright/resume"),
        ("DELETE", "/api/my/filters/bright"),
    ):
        body = {} if method in ("POST", "PATCH") and "/pause" not in path and "/resume" not in path else None
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
            assert client.request(method, path, json=body, headers=headers).status_code == 401, (method, path)
        if method != "GET":  # a change asked by another site's page, or an opaque one, is refused
            for origin in ("https://elsewhere.example", "null", "http://testserver.example"):
                refused = client.request(method, path, json=body, headers={**token, "Origin": origin})
                assert refused.status_code == 403, (method, path, origin)
        # This site's own page (or no Origin at all) is taken, and the controller is unreachable: 503.
        own = client.request(method, path, json=body, headers={**token, "Origin": "http://testserver"})
        assert own.status_code == 503, own.text
        assert "cannot be reached" in own.json()["detail"]
    assert client.delete("/api/my/filters/.hidden", headers=token).status_code == 422


# ---- the page, in a browser, over a real controller and Kafka ---------------------------------------


def _sign_in(browser: Any, base: str, token: str) -> None:
    browser.get(f"{base}/filters")
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    )
    assert browser.find_element(By.ID, "signed-out").is_displayed()  # signed out: check and try only
    assert not browser.find_element(By.ID, "make-live").is_displayed()
    sign_in(browser, f"{base}/filters", token)
    assert browser.find_element(By.ID, "who").text == "signed in as alice"
    assert browser.find_element(By.ID, "make-live").is_displayed()


def _type(browser: Any, element_id: str, text: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _cell(browser: Any, name: str, selector: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, f'#mine tr[data-filter="{name}"] {selector}')
    return str(found[0].text) if found else ""


def _edit_check_and_try(browser: Any, location: str) -> None:
    """A fault shown at its line and column, as text; fixed; tried on the latest stored alerts."""
    _type(browser, "expression", FAULTY)
    check = (By.ID, "check")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(*check).get_attribute("data-line") == "2")
    fault = _fault(FAULTY)
    assert browser.find_element(*check).get_attribute("data-column") == str(fault.column)
    assert browser.find_element(*check).text == f"line 2, column {fault.column}: {fault.message}"
    assert browser.find_element(By.CSS_SELECTOR, "#fault mark").text == "d"  # decl, where it starts
    assert HOSTILE in browser.find_element(By.ID, "fault").text  # the user's text, shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#fault img")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (no script of the user's text ran)
    screenshot(browser, "filters-page-fault")
    _type(browser, "expression", FIXED)
    WebDriverWait(browser, 30).until(lambda b: b.find_element(*check).text == "a valid filter")
    _type(browser, "try-limit", "1000")
    browser.find_element(By.ID, "try").click()
    summary = (By.ID, "tried-summary")
    WebDriverWait(browser, 60).until(lambda b: b.find_element(*summary).get_attribute("data-matched"))
    assert browser.find_element(*summary).get_attribute("data-examined") == "1000"
    assert (
        int(browser.find_element(*summary).get_attribute("data-matched")) == _latest_count(location, 1000) > 0
    )
    links = browser.find_elements(By.CSS_SELECTOR, "#tried tbody a")
    assert links
    assert all("/objects/" in str(link.get_attribute("href")) for link in links)


def _stored_matches(location: str, name: str) -> int:
    with sqlite3.connect(location, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM filter_matches WHERE filter = ?", (name,)).fetchone()[0])


@pytest.mark.kafka
def test_a_filter_written_tried_made_live_followed_paused_and_removed_in_the_page(
    browser: Any, kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    spec = chain_spec(kafka_bootstrap, prefix, 0)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    quotas = tmp_path / "quotas.toml"
    quotas.write_text("matches_per_minute = 10000000\n")  # every match stored: none held back by a cap
    output = tmp_path / "controller"
    output.mkdir()
    controller = ControllerProcess(pipeline, output, "--quotas", str(quotas))
    night = synthetic_messages(2000, alerts_per_visit=200, cutouts=False)
    history, later = night[:1200], night[1200:]
    app = None
    server = None
    try:
        send_raw(spec, history)  # what the store holds before the filter exists: its history
        wait_until(lambda: store_count(output) >= len(history), 240, "the history to be stored")
        location = str(output / "starling.db")  # the store sink's file: the web service reads it
        app = web_app(location, tmp_path / "jobs", controller_url=controller.url)
        server = BackgroundServer(app)
        base = f"http://127.0.0.1:{server.start()}"
        alice = controller.user_token("alice")
        _sign_in(browser, base, alice["Authorization"].split()[1])
        _edit_check_and_try(browser, location)
        _make_live_and_follow(browser, base, controller, alice, spec, later, location)
        _change(browser, controller, alice)
        _pause_and_remove(browser, controller, alice)
    finally:
        if server is not None:
            server.stop()
        if app is not None:
            close_web_app(app)
        controller.stop()


def _make_live_and_follow(
    browser: Any,
    base: str,
    controller: ControllerProcess,
    alice: dict[str, str],
    spec: PipelineSpec,
    later: list[tuple[str, bytes]],
    location: str,
) -> None:
    _type(browser, "live-name", "north-bright")
    browser.find_element(By.ID, "go-live").click()
    WebDriverWait(browser, 60).until(lambda b: "is live" in b.find_element(By.ID, "live-status").text)
    live = httpx.get(f"{controller.url}/filters/north-bright", headers=alice).json()
    assert live["expression"] == FIXED
    assert live["paused"] is False
    WebDriverWait(browser, 30).until(lambda b: _cell(b, "north-bright", "[data-state]") == "live")
    # The controller's refusal comes back through the service as it gave it.
    again = httpx.post(
        f"{base}/api/my/filters", headers=alice, json={"name": "north-bright", "expression": "mag < 1"}
    )
    assert again.status_code == 409
    assert "choose another name" in again.json()["detail"]

    browser.execute_script("window.notReloaded = true")
    send_raw(spec, later)
    wait_until(lambda: store_count(Path(location).parent) >= 2000, 240, "the stream to be stored")
    # Every later alert was judged by the live filter: its stored matches are the filter language's
    # verdicts on them, and the page shows each of them.
    decoder = AlertDecoder()
    alerts = [alert for origin, payload in later for alert in decoder.decode(payload, origin)]
    expected = int(sum(compile_filter(FIXED).evaluate_alerts(alerts)))
    wait_until(lambda: _stored_matches(location, "alice.north-bright") >= expected, 60, "the matches")
    matched = _stored_matches(location, "alice.north-bright")
    assert matched == expected > 0
    section = (By.ID, "matches-section")
    WebDriverWait(browser, 120).until(  # the page's next polls, on a machine that may be busy
        lambda b: b.find_element(*section).get_attribute("data-count") == str(matched)
    )
    assert browser.execute_script("return window.notReloaded") is True  # they came without a reload
    assert browser.find_element(By.ID, "matches-of").text == "alice.north-bright"
    assert browser.find_elements(By.CSS_SELECTOR, "#matches tbody a[href^='/objects/']")
    WebDriverWait(browser, 30).until(
        lambda b: _cell(b, "north-bright", '[data-count="matched"]') == str(matched)
    )
    assert int(_cell(browser, "north-bright", '[data-count="seen"]')) >= 800
    browser.execute_script("window.scrollTo(0, 0)")  # the list, its counts and the matches
    screenshot(browser, "filters-page")


def _change(browser: Any, controller: ControllerProcess, alice: dict[str, str]) -> None:
    """The live filter's condition changed in the editor: a faulty one refused at its place, and the
    filter kept as it was; a valid one saved, and the controller runs it."""
    browser.find_element(
        By.CSS_SELECTOR, '#mine tr[data-filter="north-bright"] [data-action="change"]'
    ).click()
    assert browser.find_element(By.ID, "expression").get_attribute("value") == FIXED
    assert browser.find_element(By.ID, "change-name").text == "north-bright"
    _type(browser, "expression", FAULTY)
    browser.find_element(By.ID, "save-change").click()
    status = (By.ID, "change-status")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(*status).get_attribute("class") == "problem")
    assert httpx.get(f"{controller.url}/filters/north-bright", headers=alice).json()["expression"] == FIXED
    _type(browser, "expression", CHANGED)
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "check").text == "a valid filter")
    browser.find_element(By.ID, "save-change").click()
    WebDriverWait(browser, 60).until(lambda b: "north-bright changed" in b.find_element(*status).text)
    assert httpx.get(f"{controller.url}/filters/north-bright", headers=alice).json()["expression"] == CHANGED
    WebDriverWait(browser, 30).until(lambda b: _cell(b, "north-bright", "code") == CHANGED)
    assert not browser.find_element(By.ID, "change-filter").is_displayed()


def _pause_and_remove(browser: Any, controller: ControllerProcess, alice: dict[str, str]) -> None:
    browser.find_element(
        By.CSS_SELECTOR, '#mine tr[data-filter="north-bright"] [data-action="toggle"]'
    ).click()
    WebDriverWait(browser, 60).until(lambda b: _cell(b, "north-bright", "[data-state]") == "paused")
    assert httpx.get(f"{controller.url}/filters/north-bright", headers=alice).json()["paused"] is True
    browser.find_element(
        By.CSS_SELECTOR, '#mine tr[data-filter="north-bright"] [data-action="remove"]'
    ).click()
    browser.switch_to.alert.accept()
    WebDriverWait(browser, 60).until(
        lambda b: not b.find_elements(By.CSS_SELECTOR, '#mine tr[data-filter="north-bright"]')
    )
    assert httpx.get(f"{controller.url}/filters/north-bright", headers=alice).status_code == 404
    assert httpx.get(f"{controller.url}/filters", headers=alice).json() == []
