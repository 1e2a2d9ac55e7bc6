"""The portal's pages in a real headless Chromium, over a store of the real ZTF and Rubin alerts (with
their cutouts and annotations), served by ``starling web``: the object page's light curve holds the points
the store holds, per band and kind (the real Rubin deep-field object's hundreds included); its cutouts
are the API's pictures of the stored stamps; text from users is shown as text; the search page finds
objects by id, by cone and by a TAP query, and shows a refused query's position. Screenshots are kept in
``var/screenshots``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from starling.alert.model import Alert
from starling.control.server import BackgroundServer
from starling.core.spec import ComponentSpec
from starling.store.open import open_store
from starling.testing import run_components, sample_messages
from starling.web.app import close_web_app, web_app
from tests.support.browser import screenshot
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_alerts
from tests.support.kafka import chain_spec

pytestmark = pytest.mark.samples

HOSTILE = "<script>alert(1)</script>"
LONGEST_RUBIN = ("rubin", "170028513894596704")  # the deep-field object: ~380 detections, ~780 forced


def _annotated(samples: Path, watched: tuple[float, float] | None) -> list[Alert]:
    annotators = [ComponentSpec(use="history-summary"), ComponentSpec(use="lc-features")]
    if watched is not None:  # a user's target, named to break a page that pastes text as HTML
        target = {"name": HOSTILE, "ra": watched[0], "dec": watched[1], "radius_arcsec": 2.0}
        annotators.append(
            ComponentSpec(use="watchlists", config={"lists": [{"name": "mine", "targets": [target]}]})
        )
    return run_components(annotators, sample_messages(samples / "realworld")).alerts


@pytest.fixture(scope="module")
def site(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("portal")
    first = _annotated(samples, None)
    ztf = next(a for a in first if a.survey == "ztf" and a.cutouts)
    alerts = _annotated(samples, (ztf.ra, ztf.dec))
    location = str(folder / "starling.db")
    store = open_store(location, cutouts=folder / "cutouts")
    try:
        store.write(alerts, {"bright": [a for a in alerts if a.mag is not None and a.mag < 19.0]})
    finally:
        store.close()
    app = web_app(location, folder / "jobs", cutouts=folder / "cutouts")
    server = BackgroundServer(app)
    try:
        yield {"base": f"http://127.0.0.1:{server.start()}", "location": location, "ztf": ztf}
    finally:
        server.stop()
        close_web_app(app)


def _loaded(browser: Any) -> str:
    """How the page's loading ended ("yes" or "failed"), once it has."""
    body = (By.TAG_NAME, "body")
    WebDriverWait(browser, 60).until(lambda b: b.find_element(*body).get_attribute("data-loaded"))
    return str(browser.find_element(*body).get_attribute("data-loaded"))


def _open(browser: Any, url: str) -> None:
    browser.get(url)
    assert _loaded(browser) == "yes", browser.find_element(By.ID, "problem").text


def _stored_counts(location: str, survey: str, object_id: str) -> dict[str, int]:
    """What the store holds of the object, per band and kind, as the flux plot draws it (points with
    a flux)."""
    store = open_store(location)
    counts: dict[str, int] = {}
    try:
        for table, kind, column in (
            ("detections", "detection", "flux"),
            ("non_detections", "upper_limit", "limiting_flux"),
            ("forced_photometry", "forced", "flux"),
        ):
            rows = store.query(
                f"SELECT band, count(*) AS n FROM {table} WHERE survey = ? AND object_id = ? "
                f"AND {column} IS NOT NULL GROUP BY band",
                (survey, object_id),
            )
            counts.update({f"{row['band']}|{kind}": int(row["n"]) for row in rows})
    finally:
        store.close()
    return counts


def test_the_light_curve_holds_every_stored_point(browser: Any, site: dict[str, Any]) -> None:
    survey, object_id = LONGEST_RUBIN
    _open(browser, f"{site['base']}/objects/{object_id}")  # by id alone: the page finds its survey
    assert browser.current_url.endswith(f"/objects/{survey}/{object_id}")
    browser.find_element(By.ID, "show-flux").click()
    drawn = json.loads(browser.find_element(By.ID, "lightcurve").get_attribute("data-counts"))
    stored = _stored_counts(site["location"], survey, object_id)
    assert drawn == stored
    assert sum(n for key, n in stored.items() if key.endswith("|detection")) > 300
    assert sum(n for key, n in stored.items() if key.endswith("|forced")) > 500
    screenshot(browser, "object-page-rubin")


def _page_pixels(browser: Any, element_id: str) -> np.ndarray:
    """The picture as the page drew it: its pixels read back from a canvas, in the browser."""
    script = """
        const img = document.getElementById(arguments[0]);
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
    """
    width = browser.execute_script(f"return document.getElementById('{element_id}').naturalWidth")
    values = np.array(browser.execute_script(script, element_id), dtype=np.uint8)
    return values.reshape(-1, width, 4)[:, :, :3]


def test_the_cutouts_are_the_stored_stamps(browser: Any, site: dict[str, Any]) -> None:
    ztf: Alert = site["ztf"]
    _open(browser, f"{site['base']}/objects/{ztf.survey}/{ztf.object_id}")
    WebDriverWait(browser, 30).until(
        lambda b: all(
            b.execute_script(f"return document.getElementById('cutout-{r}').complete") for r in ("science",)
        )
    )
    for role in ("science", "template", "difference"):
        image = browser.find_element(By.ID, f"cutout-{role}")
        url = image.get_attribute("src")
        stamp = fits.getdata(io.BytesIO(httpx.get(url.replace(".png", ".fits")).content))
        picture = np.asarray(Image.open(io.BytesIO(httpx.get(url).content)).convert("RGB"))
        assert picture.shape[:2] == stamp.shape  # a pixel of the picture for each of the stamp
        assert np.array_equal(_page_pixels(browser, f"cutout-{role}"), picture)  # the page shows it as sent
    screenshot(browser, "object-page-ztf")


def test_text_from_users_is_shown_as_text(browser: Any, site: dict[str, Any]) -> None:
    ztf: Alert = site["ztf"]
    _open(browser, f"{site['base']}/objects/{ztf.survey}/{ztf.object_id}")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (no script of the name ran)
    shown = browser.find_element(By.ID, "annotations").text
    assert HOSTILE in shown
    assert not browser.find_elements(By.XPATH, "//table[@id='annotations']//script")


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every name and value of an annotation, as the page writes them (non-integers to 4 decimals)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, ""
            yield from _leaves(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner, path)
    elif value is not None:
        shown = str(value)
        if isinstance(value, float):  # as JavaScript writes a number: a whole one without decimals
            shown = str(int(value)) if value.is_integer() else f"{value:.4f}"
        yield path, "true" if value is True else "false" if value is False else shown


def test_the_annotations_are_laid_out_with_every_value(browser: Any, site: dict[str, Any]) -> None:
    """Each annotator's findings as names and values (records as a table), not raw JSON: every name and
    value the API gives for the alert is in its annotator's row."""
    ztf: Alert = site["ztf"]
    _open(browser, f"{site['base']}/objects/{ztf.survey}/{ztf.object_id}")
    rows = (By.CSS_SELECTOR, "#annotations tbody tr[data-annotator]")
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(*rows))
    shown_alert = browser.find_element(By.CSS_SELECTOR, "#alerts tbody tr.chosen").get_attribute(
        "data-alert-id"
    )
    detail = httpx.get(f"{site['base']}/api/alerts/{ztf.survey}/{shown_alert}").json()
    assert detail["annotations"]
    by_annotator = {tr.get_attribute("data-annotator"): tr for tr in browser.find_elements(*rows)}
    assert set(by_annotator) == set(detail["annotations"])
    for annotator, payload in detail["annotations"].items():
        text = by_annotator[annotator].text
        for name, value in _leaves(payload):
            assert (value or name.rsplit(".", 1)[-1]) in text, (annotator, name, value)
    assert not browser.find_elements(By.CSS_SELECTOR, "#annotations pre")  # no raw JSON
    assert browser.find_elements(By.CSS_SELECTOR, "#annotations dl.fields dt")
    browser.execute_script("document.getElementById('annotations-section').scrollIntoView()")
    screenshot(browser, "object-annotations")


def test_search_by_cone_and_by_query(browser: Any, site: dict[str, Any]) -> None:
    ztf: Alert = site["ztf"]
    browser.get(f"{site['base']}/search")
    form = browser.find_element(By.ID, "by-cone")
    for name, value in (("ra", ztf.ra), ("dec", ztf.dec), ("radius_arcsec", 5)):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.LINK_TEXT, ztf.object_id))
    browser.find_element(By.LINK_TEXT, ztf.object_id).click()
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    )
    assert ztf.object_id in browser.find_element(By.ID, "object-name").text

    browser.get(f"{site['base']}/search")
    query = browser.find_element(By.NAME, "query")
    query.clear()
    query.send_keys("SELECT TOP 5 survey, object_id FROM starling.objects\nWHERE n_detections >> 3")
    browser.find_element(By.ID, "by-query").find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "problem").is_displayed())
    assert "line 2, column" in browser.find_element(By.ID, "problem").text
    query.clear()
    query.send_keys(
        "SELECT TOP 5 survey, object_id, n_detections FROM starling.objects ORDER BY n_detections DESC"
    )
    browser.find_element(By.ID, "by-query").find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#results tbody a"))
    assert LONGEST_RUBIN[1] in browser.find_element(By.ID, "results").text
    screenshot(browser, "search-page")


@pytest.mark.kafka
def test_signing_in_shows_the_users_own_matches(browser: Any, kafka_bootstrap: str, tmp_path: Path) -> None:
    """A token pasted into the page is checked by a real controller; the object page then lists the user's
    own filter among those that matched, which it did not show before."""
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, f"portal{tmp_path.name[-6:]}", 0).model_dump_json())
    (tmp_path / "controller").mkdir()
    controller = ControllerProcess(pipeline, tmp_path / "controller")
    alerts = synthetic_alerts(20, objects=4, seed=8)
    location = str(tmp_path / "s.db")
    store = open_store(location)
    try:
        store.write(alerts, {"public-bright": alerts, "alice.mine": alerts[:5]})
    finally:
        store.close()
    app = web_app(location, tmp_path / "jobs", controller_url=controller.url)
    server = BackgroundServer(app)
    try:
        base = f"http://127.0.0.1:{server.start()}"
        page = f"{base}/objects/{alerts[0].survey}/{alerts[0].object_id}"
        _open(browser, page)
        assert browser.find_element(By.ID, "who").text == "not signed in"
        assert _shown_filters(browser) == {"public-bright"}
        token = controller.user_token("alice")["Authorization"].split()[1]
        browser.find_element(By.ID, "sign-in").click()
        prompt = browser.switch_to.alert
        prompt.send_keys(token)
        prompt.accept()
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "who").text == "signed in as alice")
        assert _loaded(browser) == "yes"
        assert _shown_filters(browser) == {"public-bright", "alice.mine"}
        screenshot(browser, "object-page-signed-in")
        browser.find_element(By.ID, "sign-in").click()  # sign out: the page forgets the token
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "who").text == "not signed in")
        assert browser.execute_script("return window.sessionStorage.getItem('starling-token')") is None
    finally:
        server.stop()
        close_web_app(app)
        controller.stop()


def _shown_filters(browser: Any) -> set[str]:
    items = browser.find_elements(By.CSS_SELECTOR, "#matches li[data-filter]")
    return {str(item.get_attribute("data-filter")) for item in items}
