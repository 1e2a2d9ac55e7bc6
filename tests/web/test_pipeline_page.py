"""The portal's pipeline page over a real controller running the chain on a real Kafka, in a real
headless Chromium: the stages as the controller reports them, dead letters by reason, a replica change
made from the page (and the workers that come up for it), an autoscaler decision with its reason; a user's
token sees no operator controls, and the controller refuses its change through the API. A screenshot is
kept in ``var/screenshots``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from starling.control.server import BackgroundServer
from starling.core.spec import PipelineSpec
from starling.web.app import close_web_app, web_app
from tests.support.browser import screenshot, sign_in
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_messages, wait_until
from tests.support.kafka import chain_spec, send_raw, store_count

POISON = [b"not an alert at all", b"Obj\x01 a truncated container", b"\x00\x00\x00\x00\x07"]


def _stage(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in view["stages"] if s["name"] == name)


def _row(browser: Any, stage: str, attribute: str) -> str | None:
    rows = browser.find_elements(By.CSS_SELECTOR, f'#stages tr[data-stage="{stage}"]')
    return rows[0].get_attribute(attribute) if rows else None


class Running:
    def __init__(self, controller: ControllerProcess, spec: PipelineSpec, base: str) -> None:
        self.controller = controller
        self.spec = spec
        self.base = base

    def view(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.controller.url}/pipeline", headers=self.controller.operator, timeout=30)
        answer.raise_for_status()
        return dict(answer.json())


@pytest.fixture
def running(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> Iterator[Running]:
    """The chain under a controller, fed 400 alerts and three poison messages; the web service beside."""
    spec = chain_spec(kafka_bootstrap, prefix, 0)
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    output = tmp_path / "controller"
    output.mkdir()
    controller = ControllerProcess(pipeline, output)
    app = None
    server = None
    try:
        send_raw(
            spec,
            [*synthetic_messages(400, alerts_per_visit=200, cutouts=False)] + [("poison", p) for p in POISON],
        )
        wait_until(lambda: store_count(output) >= 400, 240, "the alerts to be stored")
        app = web_app(str(output / "starling.db"), tmp_path / "jobs", controller_url=controller.url)
        server = BackgroundServer(app)
        yield Running(controller, spec, f"http://127.0.0.1:{server.start()}")
    finally:
        if server is not None:
            server.stop()
        if app is not None:
            close_web_app(app)
        controller.stop()


def _dead_letters_shown(browser: Any) -> dict[str, int]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#dead tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    return {reason: int(count) for _, reason, count in cells}


@pytest.mark.kafka
def test_the_pipeline_page_shows_the_stages_and_changes_replicas(browser: Any, running: Running) -> None:
    controller = running.controller
    wait_until(
        lambda: _stage(running.view(), "ingest")["dead_letters"] >= len(POISON), 60, "the dead letters"
    )
    sign_in(browser, f"{running.base}/pipeline", controller.operator["Authorization"].split()[1])
    WebDriverWait(browser, 30).until(lambda b: _row(b, "distribute", "data-replicas") is not None)
    view = running.view()
    for stage in view["stages"]:
        assert _row(browser, stage["name"], "data-replicas") == str(stage["replicas"])
        shown = browser.find_elements(By.CSS_SELECTOR, f'#stages tr[data-stage="{stage["name"]}"] li')
        assert [li.get_attribute("data-component") for li in shown] == [
            c["name"] or c["use"] for c in stage["components"]
        ]
    # The dead letters by reason, as the controller counts them: every poison message, with its reason.
    reasons = _stage(view, "ingest")["dead_letter_reasons"]
    assert sum(reasons.values()) == len(POISON)
    WebDriverWait(browser, 30).until(lambda b: _dead_letters_shown(b) == reasons)

    # A replica change made from the page: the controller runs it, and the page shows the workers up.
    _set_replicas(browser, "filter", 2)
    assert _stage(running.view(), "filter")["replicas"] == 2
    WebDriverWait(browser, 120).until(lambda b: _row(b, "filter", "data-workers-up") == "2")
    assert sum(w["alive"] for w in _stage(running.view(), "filter")["workers"]) == 2

    # The autoscaler's decision, with its reason: under a policy of at least 2 replicas, a stage set to
    # 1 from the page is brought back to 2 by the autoscaler.
    policy = {"min_replicas": 2, "max_replicas": 3}
    answer = httpx.put(
        f"{controller.url}/stages/distribute/autoscaling", headers=controller.operator, json=policy
    )
    assert answer.status_code == 200, answer.text
    _set_replicas(browser, "distribute", 1)
    decisions = (By.CSS_SELECTOR, "#decisions tbody tr")
    WebDriverWait(browser, 60).until(lambda b: b.find_elements(*decisions))
    cells = [td.text for td in browser.find_elements(*decisions)[0].find_elements(By.TAG_NAME, "td")]
    assert cells[1:3] == ["distribute", "1 → 2"]
    assert "below the policy's minimum of 2" in cells[4]
    WebDriverWait(browser, 30).until(lambda b: _row(b, "distribute", "data-replicas") == "2")
    _add_and_remove_a_component(browser, running)
    screenshot(browser, "pipeline-page")
    _a_user_sees_what_its_token_allows(browser, running)


def _components(running: Running, stage: str) -> list[str]:
    return [c["name"] or c["use"] for c in _stage(running.view(), stage)["components"]]


def _add(browser: Any, stage: str, use: str, name: str, config: str) -> str:
    Select(browser.find_element(By.ID, "add-stage")).select_by_value(stage)
    for field, text in (("add-use", use), ("add-name", name), ("add-config", config)):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(text)
    browser.find_element(By.ID, "add-component").click()
    status = (By.CSS_SELECTOR, "#change-status[data-done]")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(*status).get_attribute("data-done") == "yes")
    return str(browser.find_element(*status).text)


def _add_and_remove_a_component(browser: Any, running: Running) -> None:
    """A component added to a running stage from the page, a bad config refused with the controller's
    reason, and the component removed: each change is the controller's, shown in the page."""
    refused = _add(browser, "filter", "threshold", "op-bright", '{"max_mag": "bright"}')
    assert "max_mag" in refused
    assert "op-bright" not in _components(running, "filter")
    added = _add(browser, "filter", "threshold", "op-bright", '{"max_mag": 17.5}')
    assert "op-bright added to filter" in added
    assert "op-bright" in _components(running, "filter")
    item = '#stages tr[data-stage="filter"] li[data-component="op-bright"]'
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, item))

    def click_remove(b: Any) -> bool:  # the table is drawn again every 2 s: a button found may be gone
        b.find_element(By.CSS_SELECTOR, f'{item} [data-action="remove"]').click()
        return True

    WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException]).until(click_remove)
    browser.switch_to.alert.accept()
    WebDriverWait(browser, 30).until(lambda b: not b.find_elements(By.CSS_SELECTOR, item))
    assert "op-bright" not in _components(running, "filter")


def _set_replicas(browser: Any, stage: str, replicas: int) -> None:
    Select(browser.find_element(By.ID, "replicas-stage")).select_by_value(stage)
    count = browser.find_element(By.ID, "replicas-count")
    count.clear()
    count.send_keys(str(replicas))
    browser.find_element(By.ID, "set-replicas").click()
    status = (By.CSS_SELECTOR, "#change-status[data-done]")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(*status).get_attribute("data-done") == "yes")
    assert f"{stage} set to {replicas} replicas" in browser.find_element(*status).text


def _a_user_sees_what_its_token_allows(browser: Any, running: Running) -> None:
    alice = running.controller.user_token("alice")
    seen = httpx.get(f"{running.base}/api/pipeline", headers=alice, timeout=30)
    assert seen.status_code == 200, seen.text
    assert all(w["url"] is None for s in seen.json()["pipeline"]["stages"] for w in s["workers"])
    refused = httpx.put(
        f"{running.base}/api/pipeline/stages/filter/replicas", headers=alice, json={"replicas": 1}, timeout=30
    )
    assert refused.status_code == 403, refused.text
    assert "operator" in refused.json()["detail"]
    assert _stage(running.view(), "filter")["replicas"] == 2
    sign_in(browser, f"{running.base}/pipeline", alice["Authorization"].split()[1])
    WebDriverWait(browser, 30).until(lambda b: _row(b, "filter", "data-replicas") == "2")
    assert not browser.find_element(By.ID, "change-section").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, '#stages [data-action="remove"]')
