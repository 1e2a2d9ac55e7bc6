"""The object page's "Why did a filter (not) fire?" panel in a real headless Chromium, over a store of the
real ZTF and Rubin alerts annotated by the example pipeline's annotators, served by ``starling web``.

A condition typed in the page on a real Rubin alert whose magnitude is NULL: the verdict (passed, kept out,
unknown) and the value shown for each part are what SQLite says of the same text on the stored row (the
alert's columns and its history-summary annotation, read by ``json_extract``), not what the API says; the
parts the verdict rests on are marked. A typed condition with a fault shows the service's message at its
line and column; a user's text is shown as text. Signed in with a token of a real controller: the panel
lists the user's filters and explains one by name. Screenshots are kept in ``var/screenshots``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.control.server import BackgroundServer
from starling.testing import sample_messages
from starling.web.app import close_web_app, web_app
from tests.support.annotated import annotated_alerts, store_alerts
from tests.support.browser import screenshot
from tests.support.controller import ControllerProcess
from tests.support.kafka import chain_spec

pytestmark = pytest.mark.samples

HOSTILE = "<img src=x onerror=alert(1)>"
N_DETECTIONS = "history_summary.n_detections"
# Each typed condition, its parts in the order the page shows them (each before the parts under it), and
# the parts the verdict rests on (the last of them: the cut that decided it), on an alert whose mag is
# NULL, whose band is not g, whose reliability is between 0.5 and 0.9 and with 300 detections or more.
UNKNOWN = f"(mag < 22 OR band = 'g')\n  AND reliability > 0.5 AND {N_DETECTIONS} >= 300"
KEPT_OUT = f"mag < 22 AND reliability > 0.9 AND object_id <> '{HOSTILE}'"
PASSED = "mag < 22 OR reliability > 0.5"
CASES = {
    UNKNOWN: (
        [
            (UNKNOWN, "condition"),
            ("mag < 22 OR band = 'g'", "condition"),
            ("mag < 22", "condition"),
            ("mag", "value"),
            ("band = 'g'", "condition"),
            ("band", "value"),
            ("reliability > 0.5", "condition"),
            ("reliability", "value"),
            (f"{N_DETECTIONS} >= 300", "condition"),
            (N_DETECTIONS, "value"),
        ],
        [UNKNOWN, "mag < 22 OR band = 'g'", "mag < 22"],
    ),
    KEPT_OUT: (
        [
            (KEPT_OUT, "condition"),
            ("mag < 22", "condition"),
            ("mag", "value"),
            ("reliability > 0.9", "condition"),
            ("reliability", "value"),
            (f"object_id <> '{HOSTILE}'", "condition"),
            ("object_id", "value"),
        ],
        [KEPT_OUT, "reliability > 0.9"],
    ),
    PASSED: (
        [
            (PASSED, "condition"),
            ("mag < 22", "condition"),
            ("mag", "value"),
            ("reliability > 0.5", "condition"),
            ("reliability", "value"),
        ],
        [PASSED, "reliability > 0.5"],
    ),
}
VERDICTS = {True: "passed", False: "kept out", None: "unknown (NULL)"}
# A fault on the second line, after a user's text that a page pasting HTML would run.
FAULTY = f"object_id <> '{HOSTILE}' AND\n  reliabilty > 0.5"


@pytest.fixture(scope="module")
def site(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("explain-panel")
    alerts = annotated_alerts(list(sample_messages(samples / "realworld")), folder)
    location = str(folder / "starling.db")
    store_alerts(location, alerts)
    app = web_app(location, folder / "jobs")
    server = BackgroundServer(app)
    try:
        yield {"base": f"http://127.0.0.1:{server.start()}", "location": location}
    finally:
        server.stop()
        close_web_app(app)


def _stored(location: str, where: str, *columns: str) -> dict[str, Any]:
    """The first stored alert that ``where`` selects (SQLite, on the store's own tables): its survey, ids
    and the SQLite value of each column (the history-summary's n_detections as ``hs_n``)."""
    row = """
        SELECT a.*, json_extract(h.payload, '$.n_detections') AS hs_n FROM alerts a
        LEFT JOIN annotations h
            ON h.survey = a.survey AND h.alert_id = a.alert_id AND h.annotator = 'history-summary'
    """
    chosen = ", ".join(["survey", "alert_id", "object_id", *columns])
    with sqlite3.connect(location) as db:
        db.row_factory = sqlite3.Row
        found = db.execute(
            f"SELECT {chosen} FROM ({row}) WHERE {where} ORDER BY mjd DESC, alert_id"
        ).fetchone()
    assert found is not None, f"no stored alert where {where}"
    return dict(found)


def _sql(text: str) -> str:
    return text.replace(N_DETECTIONS, "hs_n")


def _truth(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _open(browser: Any, url: str) -> None:
    browser.get(url)
    body = (By.TAG_NAME, "body")
    WebDriverWait(browser, 60).until(lambda b: b.find_element(*body).get_attribute("data-loaded"))
    assert browser.find_element(*body).get_attribute("data-loaded") == "yes", browser.find_element(
        By.ID, "problem"
    ).text


def _answered(browser: Any, state: str, root: str | None = None) -> None:
    """Wait for the panel's answer: done (with ``root`` as its whole condition) or failed."""

    def ready(b: Any) -> bool:
        if b.find_element(By.ID, "explain-status").get_attribute("data-state") != state:
            return False
        return root is None or _shown_parts(b)[0]["text"] == root

    WebDriverWait(browser, 60).until(ready)


def _shown_parts(browser: Any) -> list[dict[str, Any]]:
    """Each part the page shows, in order: its text and value as shown, and how it is marked."""
    script = """
        return Array.from(document.querySelectorAll("#explain-tree li.part")).map((li) => ({
            text: li.querySelector(":scope > .part-line > code").textContent,
            shown: li.querySelector(":scope > .part-line > .value").textContent,
            kind: li.dataset.kind, type: li.dataset.type, value: li.dataset.value,
            decisive: li.classList.contains("decisive"), cut: li.classList.contains("cut"),
        }));
    """
    found: list[dict[str, Any]] = browser.execute_script(script)
    return found


def _type(browser: Any, text: str) -> None:
    editor = browser.find_element(By.ID, "explain-expression")
    editor.clear()
    editor.send_keys(text)


def _check_shown(part: dict[str, Any], expected: Any) -> list[str]:
    """Where a part the page shows differs from SQLite's value of it."""
    where = (
        f"{part['text']!r}: shown {part['shown']!r} ({part['type']} {part['value']!r}), SQLite {expected!r}"
    )
    if part["kind"] == "condition":
        truth = _truth(expected)
        words = {True: "true", False: "false", None: "unknown"}
        ok = part["value"] == str(truth).lower().replace("none", "null") and part["shown"] == words[truth]
    elif expected is None:
        ok = (part["type"], part["value"], part["shown"]) == ("null", "null", "NULL")
    elif isinstance(expected, str):
        ok = (part["type"], part["value"], part["shown"]) == ("string", expected, f"'{expected}'")
    else:
        ok = float(part["value"]) == pytest.approx(expected, rel=1e-12) and float(
            part["shown"]
        ) == pytest.approx(expected, rel=1e-11)
    return [] if ok else [where]


def test_a_typed_condition_is_explained_as_sqlite_judges_the_stored_alert(
    browser: Any, site: dict[str, Any]
) -> None:
    # A real Rubin alert with no magnitude: the parts that read it are unknown.
    chosen = _stored(
        site["location"],
        "mag IS NULL AND band <> 'g' AND reliability > 0.5 AND reliability <= 0.9 AND hs_n >= 300",
        "mjd",
    )
    _open(browser, f"{site['base']}/objects/{chosen['survey']}/{chosen['object_id']}")
    latest = _stored(site["location"], f"object_id = '{chosen['object_id']}'")  # the panel's default alert
    shown_alert = Select(browser.find_element(By.ID, "explain-alert")).first_selected_option.text
    assert shown_alert.startswith(str(latest["alert_id"]))
    assert "sign in" in browser.find_element(By.ID, "explain-filters-note").text
    key = f"survey = '{chosen['survey']}' AND alert_id = {chosen['alert_id']}"
    faults: list[str] = []
    for number, (condition, (parts, decisive)) in enumerate(CASES.items()):
        _type(browser, condition)
        if number == 1:  # the "explain" of the alert's row in the alerts list: explained at once
            browser.find_element(By.CSS_SELECTOR, "#alerts tbody tr [data-action='explain']").click()
        else:
            browser.find_element(By.ID, "explain-go").click()
        _answered(browser, "done", condition)
        shown = _shown_parts(browser)
        assert [(p["text"], p["kind"]) for p in shown] == parts
        values = _stored(
            site["location"], key, *(f"{_sql(text)} AS p{i}" for i, (text, _) in enumerate(parts))
        )
        for i, part in enumerate(shown):
            faults += _check_shown(part, values[f"p{i}"])
        assert [p["text"] for p in shown if p["decisive"]] == decisive
        assert [p["text"] for p in shown if p["cut"]] == decisive[-1:]
        verdict = browser.find_element(By.ID, "explain-verdict")
        truth = _truth(values["p0"])
        assert verdict.get_attribute("data-verdict") == str(truth).lower().replace("none", "null")
        assert verdict.text.startswith(VERDICTS[truth])
        assert f"{decisive[-1]} (" in verdict.text  # the cut that decided it, with its value
        assert browser.find_element(By.ID, "explain-what").text.startswith(f"alert {chosen['alert_id']} ")
        fields = browser.find_elements(By.CSS_SELECTOR, "#explain-fields tbody tr")
        assert ["mag", "NULL"] in [row.text.split(" ", 1) for row in fields]
        if condition == UNKNOWN:
            browser.execute_script("document.getElementById('explain-section').scrollIntoView()")
            screenshot(browser, "object-explain")
        if condition == KEPT_OUT:  # the user's text was shown as text: no element made of it, no script run
            assert HOSTILE in browser.find_element(By.ID, "explain-tree").text
            assert not browser.find_elements(By.CSS_SELECTOR, "#explain-section img")
            with pytest.raises(NoAlertPresentException):
                browser.switch_to.alert.text  # noqa: B018
    assert faults == [], "\n".join(faults)


def test_a_typed_condition_with_a_fault_shows_where_it_is(browser: Any, site: dict[str, Any]) -> None:
    chosen = _stored(site["location"], "survey = 'ztf'")
    _open(browser, f"{site['base']}/objects/{chosen['survey']}/{chosen['object_id']}")
    with pytest.raises(FilterSyntaxError) as caught:
        compile_filter(FAULTY)
    fault = caught.value
    assert fault.line == 2
    _type(browser, FAULTY)
    browser.find_element(By.ID, "explain-go").click()
    _answered(browser, "failed")
    problem = browser.find_element(By.ID, "explain-problem")
    assert problem.text == f"422: line 2, column {fault.column}: {fault.message}"
    assert "did you mean reliability" in problem.text
    assert (
        browser.find_element(By.CSS_SELECTOR, "#explain-fault mark").text == "r"
    )  # reliabilty, where it starts
    assert not browser.find_element(By.ID, "explain-result").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "#explain-section img")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    screenshot(browser, "object-explain-fault")
    _type(browser, "")  # nothing to explain: said so, nothing asked
    browser.find_element(By.ID, "explain-go").click()
    _answered(browser, "idle")
    assert not problem.is_displayed()


@pytest.mark.kafka
def test_one_of_your_filters_is_explained_by_name(
    browser: Any, site: dict[str, Any], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Signed in with a token of a real controller: the user's filters are listed, and the one chosen is
    explained as the controller holds it (as SQLite judges its text on the stored alert)."""
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, f"panel{tmp_path.name[-6:]}", 0).model_dump_json())
    (tmp_path / "controller").mkdir()
    controller = ControllerProcess(pipeline, tmp_path / "controller")
    filters = {"bright-r": "mag < 19.5 AND band = 'r'", "any-rubin": "survey = 'rubin'"}
    app = web_app(site["location"], tmp_path / "jobs", controller_url=controller.url)
    server = BackgroundServer(app)
    try:
        alice = controller.user_token("alice")
        for name, expression in filters.items():
            made = httpx.post(
                f"{controller.url}/filters",
                json={"name": name, "expression": expression},
                headers=alice,
                timeout=60,
            )
            assert made.status_code == 201, made.text
        chosen = _stored(
            site["location"],
            "survey = 'ztf' AND band = 'r' AND mag >= 19.5",
            "(mag < 19.5 AND band = 'r') AS v",
        )
        page = f"http://127.0.0.1:{server.start()}/objects/{chosen['survey']}/{chosen['object_id']}"
        browser.get(page)
        browser.execute_script(
            "window.sessionStorage.setItem('starling-token', arguments[0])", alice["Authorization"].split()[1]
        )
        _open(browser, page)
        assert browser.find_element(By.ID, "who").text == "signed in as alice"
        chooser = Select(browser.find_element(By.ID, "explain-filter"))
        assert [o.get_attribute("value") for o in chooser.options] == ["", *filters]
        chooser.select_by_value("bright-r")
        editor = browser.find_element(By.ID, "explain-expression")
        assert editor.get_attribute("value") == filters["bright-r"]  # shown, not to be edited here
        assert editor.get_attribute("readonly") is not None
        browser.find_element(By.ID, "explain-go").click()
        _answered(browser, "done", filters["bright-r"])
        assert _truth(chosen["v"]) is False
        assert browser.find_element(By.ID, "explain-verdict").get_attribute("data-verdict") == "false"
        assert browser.find_element(By.ID, "explain-verdict").text.startswith("kept out")
        assert "your filter bright-r" in browser.find_element(By.ID, "explain-what").text
        shown = _shown_parts(browser)
        assert [p["text"] for p in shown if p["cut"]] == ["mag < 19.5"]
        assert [p["value"] for p in shown if p["kind"] == "condition"] == ["false", "false", "true"]
        browser.execute_script("document.getElementById('explain-section').scrollIntoView()")
        screenshot(browser, "object-explain-filter")
        chooser.select_by_value("")  # back to the condition typed: the editor is the user's again
        assert editor.get_attribute("readonly") is None
    finally:
        browser.execute_script("window.sessionStorage.clear()")
        server.stop()
        close_web_app(app)
        controller.stop()
