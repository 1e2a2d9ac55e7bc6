"""The portal's data API (``/api`` of ``starling web``) over a store of the real ZTF and Rubin alerts
(annotated by the real annotators, with their cutouts), on SQLite and on a real PostgreSQL: every route
checked against the store's own SQL, the stamps against their stored bytes, the filter matches against
who may see them; refusals with their messages; and a schemathesis fuzz of the OpenAPI document."""

from __future__ import annotations

import gzip
import io
import json
import math
import sqlite3
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import schemathesis
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.checks import positive_data_acceptance
from scipy.stats import spearmanr

from starling.adql import sqlite_functions
from starling.alert.model import Alert
from starling.cli.web import default_cutouts
from starling.control.tokens import Principal
from starling.core.spec import ComponentSpec
from starling.store.base import AlertStore
from starling.store.open import open_store
from starling.testing import run_components, sample_messages
from starling.vo.tap_query import TapStore
from starling.web.api.filters import filter_page
from starling.web.api.matches import object_matches
from starling.web.api.search import cone_query
from starling.web.api.stamps import BLANK_RGB
from starling.web.app import close_web_app, web_app
from tests.support.helpers import synthetic_alerts

pytestmark = pytest.mark.samples

PUBLIC, ALICE, BOB = "bright", "alice.mine", "bob.secret"
ROLES = ("science", "template", "difference")


def _alerts(samples: Path) -> list[Alert]:
    """The real alerts through the real annotators, and a synthetic night whose objects come back many
    times (the real ones have an alert each), with stamps."""
    annotators = [ComponentSpec(use="history-summary"), ComponentSpec(use="lc-features")]
    real = run_components(annotators, sample_messages(samples / "realworld")).alerts
    night = synthetic_alerts(120, objects=6, seed=12, cutouts=True, alerts_per_visit=6)
    assert not {a.key for a in real} & {a.key for a in night}
    return [*real, *night]


def _fill(location: str, cutouts: Path, alerts: list[Alert]) -> None:
    store = open_store(location, cutouts=cutouts)
    try:
        for start in range(0, len(alerts), 7):
            chunk = alerts[start : start + 7]
            store.write(
                chunk,
                {
                    PUBLIC: [a for a in chunk if a.mag is not None and a.mag < 20.0],
                    ALICE: chunk[::2],
                    BOB: chunk[1::3],
                },
            )
    finally:
        store.close()


@dataclass
class Served:
    client: TestClient
    app: FastAPI
    store: AlertStore  # the store's own SQL, what every answer is checked against
    tap: TapStore
    alerts: list[Alert]

    def sql(self, query: str, *parameters: Any) -> list[dict[str, Any]]:
        return self.store.query(query, parameters)

    def get(self, url: str, status: int = 200) -> Any:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.text)
        return response.json()


@pytest.fixture(scope="module")
def alerts(samples: Path) -> list[Alert]:
    return _alerts(samples)


@pytest.fixture(scope="module")
def module_postgres(postgres_server: str) -> Iterator[str]:
    """A database of this module's own (the per-test ``postgres_url`` would refill it for every test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server.rpartition('/')[0]}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, alerts: list[Alert], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    location = request.getfixturevalue("module_postgres") if request.param == "postgresql" else ""
    location = location or str(folder / "starling.db")
    _fill(location, folder / "cutouts", alerts)
    app = web_app(location, folder / "jobs", cutouts=folder / "cutouts")
    store = open_store(location, cutouts=folder / "cutouts")
    try:
        with TestClient(app) as client:
            yield Served(client, app, store, app.state.tap_store, alerts)
    finally:
        store.close()
        close_web_app(app)


def _objects(served: Served) -> list[dict[str, Any]]:
    return served.sql("SELECT * FROM objects ORDER BY survey, object_id")


# ---- objects and alerts -------------------------------------------------------------------------------


def test_every_object_is_its_row_with_its_counts_and_latest_alert(served: Served) -> None:
    objects = _objects(served)
    assert len(objects) == len({(a.survey, a.object_id) for a in served.alerts})
    for row in objects:
        key = (row["survey"], row["object_id"])
        got = served.get(f"/api/objects/{key[0]}/{key[1]}")
        for column in ("ra", "dec", "first_mjd", "last_mjd", "n_detections", "n_upper_limits", "last_band"):
            assert got[column] == row[column], (key, column)
        where = "WHERE survey = ? AND object_id = ?"
        assert got["n_alerts"] == served.sql(f"SELECT count(*) AS n FROM alerts {where}", *key)[0]["n"]
        assert (
            got["n_forced"]
            == served.sql(f"SELECT count(*) AS n FROM forced_photometry {where}", *key)[0]["n"]
        )
        assert got["latest_alert"]["alert_id"] == row["last_alert_id"]
        assert got["latest_alert"]["object_id"] == key[1]


def test_an_objects_alerts_come_newest_first_a_page_at_a_time(served: Served) -> None:
    paged = 0
    for row in _objects(served):
        key = (row["survey"], row["object_id"])
        expected = [
            r["alert_id"]
            for r in served.sql(
                "SELECT alert_id FROM alerts WHERE survey = ? AND object_id = ? "
                "ORDER BY mjd DESC, alert_id DESC",
                *key,
            )
        ]
        whole = served.get(f"/api/objects/{key[0]}/{key[1]}/alerts?limit=1000")
        assert [a["alert_id"] for a in whole["alerts"]] == expected
        assert whole["more"] is False
        if len(expected) < 5:
            continue
        paged += 1
        seen: list[int] = []
        while True:
            page = served.get(f"/api/objects/{key[0]}/{key[1]}/alerts?limit=3&offset={len(seen)}")
            seen += [a["alert_id"] for a in page["alerts"]]
            if not page["more"]:
                break
        assert seen == expected
    assert paged >= 3  # the synthetic objects, which came back many times


def test_one_alert_is_its_row_with_its_annotations(served: Served) -> None:
    for row in served.sql("SELECT * FROM alerts ORDER BY survey, alert_id"):
        got = served.get(f"/api/alerts/{row['survey']}/{row['alert_id']}")
        for column, value in row.items():
            if column != "cutouts":
                assert got[column] == value, (row["alert_id"], column)
        stored = served.sql(
            "SELECT annotator, payload FROM annotations WHERE survey = ? AND alert_id = ?",
            row["survey"],
            row["alert_id"],
        )
        assert got["annotations"] == {r["annotator"]: json.loads(r["payload"]) for r in stored}


def test_annotations_of_an_objects_alerts_are_the_stored_ones(served: Served) -> None:
    annotated = 0
    for row in _objects(served):
        key = (row["survey"], row["object_id"])
        got = served.get(f"/api/objects/{key[0]}/{key[1]}/annotations?limit=1000")
        stored = served.sql(
            "SELECT n.alert_id, n.annotator, n.payload FROM annotations n JOIN alerts a "
            "ON a.survey = n.survey AND a.alert_id = n.alert_id WHERE a.survey = ? AND a.object_id = ?",
            *key,
        )
        expected: dict[int, dict[str, Any]] = {}
        for r in stored:
            expected.setdefault(r["alert_id"], {})[r["annotator"]] = json.loads(r["payload"])
        assert {a["alert_id"]: a["annotations"] for a in got["alerts"] if a["annotations"]} == expected
        annotated += len(expected)
    assert annotated >= 35  # every real alert went through both annotators


# ---- light curves ------------------------------------------------------------------------------------

_KIND_TABLES = {"detection": "detections", "upper_limit": "non_detections", "forced": "forced_photometry"}


def test_light_curves_hold_every_point_of_the_store_per_band(served: Served) -> None:
    for row in _objects(served):
        key = (row["survey"], row["object_id"])
        got = served.get(f"/api/objects/{key[0]}/{key[1]}/lightcurve")
        assert got["truncated"] is False
        counted = Counter((p["band"], p["kind"]) for p in got["points"])
        for kind, table in _KIND_TABLES.items():
            per_band = served.sql(
                f"SELECT band, count(*) AS n FROM {table} WHERE survey = ? AND object_id = ? GROUP BY band",
                *key,
            )
            assert {r["band"]: r["n"] for r in per_band} == {
                b: n for (b, k), n in counted.items() if k == kind
            }
        for band in got["bands"]:
            assert all(band[kind] == counted[band["band"], kind] for kind in _KIND_TABLES)
        times = [p["mjd"] for p in got["points"]]
        assert times == sorted(times)


def test_the_longest_rubin_history_point_by_point(served: Served) -> None:
    longest = served.sql(
        "SELECT object_id, count(*) AS n FROM detections WHERE survey = 'rubin' GROUP BY object_id "
        "ORDER BY n DESC LIMIT 1"
    )[0]["object_id"]
    got = served.get(f"/api/objects/rubin/{longest}/lightcurve")
    detections = [p for p in got["points"] if p["kind"] == "detection"]
    stored = served.sql(
        "SELECT mjd, band, mag, mag_err, flux, flux_err FROM detections WHERE survey = ? AND object_id = ? "
        "ORDER BY mjd, band",
        "rubin",
        longest,
    )
    assert 350 <= len(stored) == len(detections)  # the deep-field object: ~380 detections, ~780 forced
    for point, row in zip(sorted(detections, key=lambda p: (p["mjd"], p["band"])), stored, strict=True):
        assert {k: point[k] for k in row} == row
    forced = [p for p in got["points"] if p["kind"] == "forced"]
    assert len(forced) > 700
    for point in forced:  # the magnitude derived from the flux, where the flux is positive
        if point["flux"] is not None and point["flux"] > 0:
            assert point["mag"] == pytest.approx(31.4 - 2.5 * math.log10(point["flux"]))
        else:
            assert point["mag"] is None
    assert sum(b["detection"] for b in got["bands"]) == len(stored)


# ---- filter matches: who sees what -----------------------------------------------------------------


def _stored_matches(served: Served, filters: tuple[str, ...], key: tuple[str, str]) -> dict[str, list[int]]:
    rows = served.sql("SELECT filter, alert_id FROM filter_matches WHERE survey = ? AND object_id = ?", *key)
    found: dict[str, list[int]] = {}
    for r in rows:
        if r["filter"] in filters:
            found.setdefault(r["filter"], []).append(r["alert_id"])
    return {name: sorted(ids) for name, ids in found.items()}


def _shown(matches: Any) -> dict[str, list[int]]:
    filters = matches["filters"] if isinstance(matches, dict) else matches.model_dump()["filters"]
    return {f["filter"]: sorted(a["alert_id"] for a in f["alerts"]) for f in filters}


def test_an_objects_matches_are_those_its_viewer_may_see(served: Served) -> None:
    private = 0
    for row in _objects(served):
        key = (row["survey"], row["object_id"])
        anonymous = served.get(f"/api/objects/{key[0]}/{key[1]}/matches")
        assert _shown(anonymous) == _stored_matches(served, (PUBLIC,), key)
        # A viewer as TAP takes it: the database shows each user their own filters and the public ones.
        for user, own in (("alice", ALICE), ("bob", BOB)):
            seen = _shown(object_matches(served.tap, key[0], key[1], user))
            assert seen == _stored_matches(served, (PUBLIC, own), key)
            private += own in seen
    assert private > 10


def test_a_filters_matches_since_a_time_in_pages(served: Served) -> None:
    stored = served.sql(
        "SELECT survey, alert_id, mjd FROM filter_matches WHERE filter = ? ORDER BY mjd", PUBLIC
    )
    since = stored[len(stored) // 3]["mjd"]
    expected = sorted(
        ((r["mjd"], r["survey"], r["alert_id"]) for r in stored if r["mjd"] >= since),
    )
    seen: list[tuple[float, str, int]] = []
    while True:
        page = served.get(f"/api/filters/{PUBLIC}/matches?since={since!r}&limit=4&offset={len(seen)}")
        seen += [(m["mjd"], m["survey"], m["alert_id"]) for m in page["matches"]]
        if not page["more"]:
            break
    assert seen == expected
    assert len(seen) > 8
    # Past the last match, or after the newest: none, but the filter is known to have some.
    assert served.get(f"/api/filters/{PUBLIC}/matches?offset={len(stored)}")["matches"] == []
    assert served.get(f"/api/filters/{PUBLIC}/matches?since=99999")["matches"] == []


def test_another_users_filter_is_answered_as_no_filter(served: Served) -> None:
    nothing = served.get("/api/filters/no-such-filter/matches", 404)["detail"]
    hidden = served.get(f"/api/filters/{ALICE}/matches", 404)["detail"]
    assert hidden.replace(ALICE, "X") == nothing.replace("no-such-filter", "X")
    assert "among your filters and the public ones" in hidden
    stored = served.sql(
        "SELECT alert_id FROM filter_matches WHERE filter = ? ORDER BY mjd, survey, alert_id", ALICE
    )
    own = filter_page(served.tap, ALICE, 0.0, 1000, 0, "alice")
    assert [r["alert_id"] for r in own.rows] == [r["alert_id"] for r in stored]
    with pytest.raises(HTTPException, match="among your filters") as refused:
        filter_page(served.tap, ALICE, 0.0, 1000, 0, "bob")
    assert refused.value.status_code == 404


# ---- cone search -------------------------------------------------------------------------------------


def test_cones_find_the_objects_a_brute_force_search_finds_nearest_first(served: Served) -> None:
    objects = _objects(served)
    catalogue = SkyCoord([r["ra"] for r in objects] * u.deg, [r["dec"] for r in objects] * u.deg)
    names = [(r["survey"], r["object_id"]) for r in objects]
    centres = [(r["ra"] + 0.001, r["dec"] - 0.002) for r in objects[::3]] + [(151.0, 2.3), (0.0, -89.9)]
    found_any = 0
    for ra, dec in centres:
        for radius in (30.0, 600.0, 3600.0):
            got = served.get(
                f"/api/search/cone?ra={ra % 360!r}&dec={dec!r}&radius_arcsec={radius}&limit=1000"
            )
            separation = catalogue.separation(SkyCoord(ra % 360 * u.deg, dec * u.deg)).arcsec
            inside = sorted((float(s), names[i]) for i, s in enumerate(separation) if s <= radius)
            near_edge = {names[i] for i, s in enumerate(separation) if abs(s - radius) < 1e-3}
            shown = [
                (o["survey"], o["object_id"])
                for o in got["objects"]
                if (o["survey"], o["object_id"]) not in near_edge
            ]
            assert shown == [name for _, name in inside if name not in near_edge], (ra, dec, radius)
            for o, (distance, _) in zip(got["objects"], inside, strict=False):
                assert o["distance_arcsec"] == pytest.approx(distance, abs=1e-3)
            found_any += len(shown)
    assert found_any > 30


def test_a_cone_reads_the_position_index(served: Served) -> None:
    sql = served.tap.run(cone_query(151.0, 2.3, 600.0, 100), 100).sql
    location = str(served.tap.location)
    if location.startswith("postgresql"):
        with psycopg.connect(location) as conn:
            conn.execute("SET enable_seqscan = off")  # a small table would rightly be scanned
            plan = "\n".join(str(r[0]) for r in conn.execute(f"EXPLAIN {sql}"))  # type: ignore[arg-type]
        assert "Index" in plan, plan
        assert "Seq Scan" not in plan, plan
        return
    db = sqlite3.connect(location)
    sqlite_functions.register(db)
    try:
        plan = " ".join(str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        db.close()
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


# ---- cutouts -----------------------------------------------------------------------------------------


def _image(fits_bytes: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # ZTF's SIMPLE card is loosely formatted
        hdus = fits.open(io.BytesIO(fits_bytes))
    with hdus:
        return next(np.array(h.data, dtype=float) for h in hdus if h.data is not None and h.data.ndim == 2)


def _check_picture(png: bytes, image: np.ndarray) -> float | None:
    """The PNG is the stamp: its size, blank pixels in the blank colour, the others grey and a monotone
    function of the stamp's values (FITS rows from the bottom). The rank correlation, when it has one."""
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    assert picture.mode == "RGB"
    assert picture.size == (image.shape[1], image.shape[0])
    pixels = np.flipud(np.asarray(picture))
    finite = np.isfinite(image)
    assert (pixels[~finite] == BLANK_RGB).all()
    grey = pixels[finite]
    assert (grey[:, 0] == grey[:, 1]).all()
    assert (grey[:, 1] == grey[:, 2]).all()
    values, levels = image[finite], grey[:, 0].astype(int)
    order = np.argsort(values, kind="stable")
    assert (np.diff(levels[order]) >= 0).all(), "brighter pixels are never drawn darker"
    if len(np.unique(levels)) < 3:
        return None
    return float(spearmanr(values, levels).statistic)


def test_cutouts_as_fits_and_as_pictures(served: Served) -> None:
    blanks, correlations = 0, []
    for alert in served.alerts:
        assert alert.cutouts
        for role in ROLES:
            base = f"/api/alerts/{alert.survey}/{alert.alert_id}/cutouts/{role}"
            stored = served.store.cutout(alert.survey, alert.alert_id, role)
            assert stored == alert.cutouts[role].data
            expected = gzip.decompress(stored) if stored[:2] == b"\x1f\x8b" else stored
            as_fits = served.client.get(f"{base}.fits")
            assert as_fits.status_code == 200
            assert as_fits.headers["content-type"] == "application/fits"
            assert as_fits.content == expected
            image = _image(as_fits.content)
            np.testing.assert_array_equal(image, _image(expected))
            as_png = served.client.get(f"{base}.png")
            assert as_png.status_code == 200
            assert as_png.headers["content-type"] == "image/png"
            correlation = _check_picture(as_png.content, image)
            if correlation is not None:
                correlations.append(correlation)
            blanks += int((~np.isfinite(image)).sum())
    assert blanks > 0  # a ZTF stamp at the edge of its CCD: its blank pixels were drawn in the blank colour
    assert len(correlations) > 100
    assert min(correlations) > 0.8


def test_cutouts_that_are_not_there(served: Served) -> None:
    assert served.get("/api/alerts/ztf/1/cutouts/science.png", 404)["detail"] == "no alert ztf 1 in the store"
    refused = served.get("/api/alerts/ztf/1/cutouts/sky.png", 422)["detail"]
    assert refused[0]["loc"] == ["path", "role"]


# ---- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/api/objects/ztf/ZTF00nothing", 404, "no object ztf ZTF00nothing in the store"),
        ("/api/objects/ztf/ZTF00nothing/lightcurve", 404, "no object ztf ZTF00nothing in the store"),
        ("/api/objects/rubin/1/alerts", 404, "no object rubin 1 in the store"),
        ("/api/objects/ztf/ZTF00nothing/matches", 404, "no object"),
        ("/api/alerts/rubin/1", 404, "no alert rubin 1 in the store"),
        ("/api/objects/gaia/x", 422, "Input should be 'ztf' or 'rubin'"),
        ("/api/objects/ztf/it's", 422, "should match pattern"),
        ("/api/alerts/ztf/abc", 422, "valid integer"),
        ("/api/alerts/ztf/0", 422, "greater than or equal to 1"),
        ("/api/alerts/ztf/9223372036854775808", 422, "less than or equal to 9223372036854775807"),
        ("/api/objects/ztf/ZTF17aadcuwj/alerts?limit=1001", 422, "less than or equal to 1000"),
        ("/api/search/cone?ra=10&dec=0&radius_arcsec=3601", 422, "less than or equal to 3600"),
        ("/api/search/cone?ra=10&dec=91&radius_arcsec=1", 422, "less than or equal to 90"),
        ("/api/search/cone?ra=30&dec=30&radius_arcsec=6e-283", 422, "greater than or equal to 0.001"),
        ("/api/search/cone?ra=nan&dec=0&radius_arcsec=1", 422, "finite number"),
        ("/api/search/cone?ra=10&dec=0", 422, "Field required"),
        ("/api/filters/bright/matches?since=inf", 422, "finite number"),
        ("/api/filters/no%20such/matches", 422, "should match pattern"),
    ],
)
def test_refusals_say_why(served: Served, url: str, status: int, says: str) -> None:
    response = served.client.get(url)
    assert response.status_code == status, response.text
    assert says in response.text


def test_an_absent_store_is_a_503_and_no_cutouts_folder_a_404(tmp_path: Path) -> None:
    app = web_app(tmp_path / "nothing-yet.db", tmp_path / "jobs")
    try:
        with TestClient(app) as client:
            down = client.get("/api/objects/ztf/ZTF18abudxnw")
            assert down.status_code == 503
            assert "try again" in down.json()["detail"]
            assert "Traceback" not in down.text
            assert client.get("/api/search/cone?ra=1&dec=1&radius_arcsec=1").status_code == 503
            unserved = client.get("/api/alerts/ztf/1/cutouts/science.fits")
            assert unserved.status_code == 404
            assert "started without --cutouts" in unserved.json()["detail"]
    finally:
        close_web_app(app)
    assert default_cutouts(str(tmp_path / "out" / "starling.db")) == tmp_path / "out" / "cutouts"
    assert default_cutouts("sqlite:///var/s.db") == Path("var/cutouts")
    assert default_cutouts("postgresql://u@h/db") is None


def test_a_store_that_goes_down_is_a_503(
    postgres_server: str, postgres_url: str, tmp_path: Path, alerts: list[Alert]
) -> None:
    _fill(postgres_url, tmp_path / "cutouts", alerts[:20])
    app = web_app(postgres_url, tmp_path / "jobs", cutouts=tmp_path / "cutouts")
    key = (alerts[0].survey, alerts[0].object_id)
    try:
        with TestClient(app) as client:
            assert client.get(f"/api/objects/{key[0]}/{key[1]}").status_code == 200
            with psycopg.connect(postgres_server, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {postgres_url.rpartition('/')[2]} WITH (FORCE)")
            down = client.get(f"/api/objects/{key[0]}/{key[1]}")
            assert down.status_code == 503, down.text
            assert "cannot be read now" in down.json()["detail"]
            stamp = client.get(f"/api/alerts/{alerts[0].survey}/{alerts[0].alert_id}/cutouts/science.png")
            assert stamp.status_code == 503, stamp.text
    finally:
        close_web_app(app)


# ---- with a token ------------------------------------------------------------------------------------


class _Identities:
    """A stand-in for the controller's check of tokens: ``alice-token`` is alice's."""

    controller_url = "http://controller.test"

    def principal(self, token: str) -> Principal | None:
        return Principal(role="user", user="alice") if token == "alice-token" else None


def test_a_token_shows_its_users_matches(served: Served) -> None:
    row = served.sql("SELECT survey, object_id FROM filter_matches WHERE filter = ? LIMIT 1", ALICE)[0]
    key = (row["survey"], row["object_id"])
    checked_by_the_controller = served.app.state.identities
    served.app.state.identities = _Identities()
    try:
        alice = {"Authorization": "Bearer alice-token"}
        seen = served.client.get(f"/api/objects/{key[0]}/{key[1]}/matches", headers=alice).json()
        assert ALICE in _shown(seen)
        assert _shown(seen) == _stored_matches(served, (PUBLIC, ALICE), key)
        own = served.client.get(f"/api/filters/{ALICE}/matches?limit=1000", headers=alice)
        assert own.status_code == 200
        assert own.json()["matches"]
        assert served.client.get(f"/api/filters/{BOB}/matches", headers=alice).status_code == 404
        unknown = served.client.get(f"/api/filters/{ALICE}/matches", headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 401
    finally:
        served.app.state.identities = checked_by_the_controller


# ---- the OpenAPI document, fuzzed --------------------------------------------------------------------


# Answered by the service itself, from neither the store nor the controller: no 503 to document.
SELF_ANSWERED = {"/api/fields", "/api/filters/check"}


def test_every_api_route_is_documented(served: Served) -> None:
    document = served.get("/openapi.json")
    routes = {path: item for path, item in document["paths"].items() if path.startswith("/api/")}
    assert len(routes) == 27  # with my_watch's 4 and pipeline's 4
    for path, item in routes.items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert operation["description"], (method, path)
            codes = operation["responses"].keys()
            assert any(code.startswith("2") for code in codes), (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in codes, (method, path)
            if path not in SELF_ANSWERED:
                assert "503" in codes, (method, path)


class _Forward:
    """An ASGI app that hands each request to the app of the store under test: schemathesis reads the
    OpenAPI document when the module is read (from an app over no store yet: the document is the same),
    and the fixture of each backend then points it at its own app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_DOCUMENTED = Path(tempfile.mkdtemp(prefix="starling-api-fuzz-"))
_forward = _Forward(web_app(_DOCUMENTED / "none.db", _DOCUMENTED / "jobs"))
fuzzed = schemathesis.openapi.from_asgi("/openapi.json", _forward).include(path_regex="^/api/")


@fuzzed.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_never_fails_whatever_it_is_sent(case: schemathesis.Case, served: Served) -> None:
    """No 5xx, every answer as documented (a 404 for an id the store does not hold is documented)."""
    _forward.app = served.app
    # A schema-valid expression may still be no filter (a 422 naming where): the schema cannot hold the
    # filter language, so a refused one is no failure of the trial.
    taking_filters = ("/api/filters/try", "/api/alerts/{survey}/{alert_id}/explain")
    excluded = [positive_data_acceptance] if case.operation.path in taking_filters else []
    case.call_and_validate(excluded_checks=excluded)
