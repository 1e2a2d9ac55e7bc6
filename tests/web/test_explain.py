"""``/api/alerts/{survey}/{alert_id}/explain``: the value of each part of a filter on one alert is what
the stream filter says of it, on a store of the real alerts annotated by the example pipeline's
annotators (``tests.support.annotated``), on SQLite and on PostgreSQL.

For every expression and every alert: the verdict is the stream filter's (``compile_filter(expression)
.evaluate_alerts``); each condition's value is what the stream filter says of that part alone, true,
false (its NOT passes) or unknown (neither passes); each value is null exactly when the stream filter
finds it null; each AND, OR and NOT follows from its children by three-valued logic. Then the refusals,
each with its message and the fault's line and column as a live filter has them, and a filter asked by
name from a real controller with its owner's token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlglot import exp

from starling.adql.explain import MAX_PARTS
from starling.adql.filter_query import view_condition
from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError, parse_condition
from starling.alert.model import Alert
from starling.testing import sample_messages
from starling.web.app import close_web_app, web_app
from tests.support.annotated import annotated_alerts, placed_conditions, store_alerts
from tests.support.controller import ControllerProcess
from tests.support.kafka import chain_spec
from tests.support.postgres import own_database

pytestmark = pytest.mark.samples

# Mixes of the constructs, asked through the route for every alert ({ra} and {dec}: the median position).
MIXES = [
    "mag < 19 AND band = 'r'",
    "mag < 19 OR band = 'g' OR ndethist >= 3",
    "NOT (band = 'g' OR mag > 20) AND ndethist BETWEEN 1 AND 5",
    "(mag < 19 OR mag > 21) AND NOT band = 'i'",
    "NOT NOT mag < 19.5",
    "mag NOT BETWEEN 18 AND 19.5 OR band IN ('g', 'i')",
    "band NOT IN ('g', NULL) OR mag < 19",  # NOT IN a list with NULL: never true
    "object_id LIKE 'ZTF%' AND (object_id NOT ILIKE 'ztf18%' OR survey = 'rubin')",
    "(object_id || '_x') LIKE '%!_x' ESCAPE '!' AND band = 'r'",
    "mag IS NULL OR mag IS NOT NULL AND mag_err > 0.05",
    "mag = NULL OR band = 'g'",  # a comparison with NULL: unknown
    "NOT (mag + NULL > 1) OR band = 'g'",
    "history_summary.delta_mag_same_band IS NULL AND history_summary.peak_mag < 19",
    "lc_features.r.rise_rate > 0 OR lc_features.g.rise_rate > 0 OR band = 'i'",  # null fields: unknown
    "mag - 2 * mag_err < 19 AND flux / flux_err > 10",
    "flux / (ndethist - 1) > 10000 OR ABS(dec) < 30",  # x / 0 is NULL
    "ROUND(mag, 1) >= 19.8 AND LOG10(flux) > 4.5",
    "COALESCE(lc_features.g.peak_mag, 99) < 99 OR -mag < -19.5",
    "SQRT(flux) > 100 AND NOT reliability < 0.5",  # the root of a negative flux: NULL
    '"history-summary".n_detections >= 2 AND ndethist = history_summary.n_detections',
    "watchlists.favourites.count >= 1 OR xmatch.gaia.dist_arcsec < 0.5 OR watchmaps.gw.inside = 1",
    "xmatch.gaia.phot_g_mean_mag < 18 AND xmatch.gaia.id LIKE 'Gaia-1%'",
    "solar_system.known = 1 OR COALESCE(solar_system.name, 'none') <> 'none'",
    "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 20)) = 1 AND mag < 20",
    "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra}, {dec})) < 20 OR COORD2(POINT(ra, dec)) < 0",
    "age_days > 10 AND first_mjd < mjd - 1 AND nnondethist > 0",
    "UPPER(band) = 'R' AND LOWER(survey) = 'ztf'",
    "mag % 0.5 < 0.2 OR MOD(ndethist, 2) = 1",
    "(band = 'r'\n  AND mag < 20)\nOR (band = 'g' AND\n     mag < 19.5)",
    "mag < 19 and band = 'r' or not (ndethist > 2)",
]
# Every construct of the filter language (the conditions the TAP equivalence holds) on every STRIDE-th
# alert: the mixes above take every alert.
STRIDE = 7


@pytest.fixture(scope="module")
def alerts(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    messages = list(sample_messages(samples / "realworld"))
    return annotated_alerts(messages, tmp_path_factory.mktemp("annotated"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(
    request: pytest.FixtureRequest, alerts: list[Alert], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp(f"explain-{request.param}")
    if request.param == "postgresql":
        database = own_database(request.getfixturevalue("postgres_server"))
    else:
        database = contextlib.nullcontext(str(folder / "starling.db"))
    with database as location:
        store_alerts(location, alerts)
        app = web_app(location, folder / "jobs")
        try:
            with TestClient(app) as served:
                yield served
        finally:
            close_web_app(app)


def _explained(client: TestClient, alert: Alert, **parameters: str) -> dict[str, Any]:
    response = client.get(f"/api/alerts/{alert.survey}/{alert.alert_id}/explain", params=parameters)
    assert response.status_code == 200, (parameters, response.text)
    answer: dict[str, Any] = response.json()
    return answer


class _StreamFilter:
    """What the stream filter says of a text on each alert, each text compiled once."""

    def __init__(self, alerts: list[Alert]) -> None:
        self.alerts = alerts
        self.truths: dict[str, list[bool | None]] = {}
        self.nulls: dict[str, list[bool]] = {}

    def passes(self, expression: str) -> list[bool]:
        return [bool(v) for v in compile_filter(expression).evaluate_alerts(self.alerts)]

    def truth(self, condition: str) -> list[bool | None]:
        """True where it passes, False where its NOT passes, None (unknown) where neither does."""
        if condition not in self.truths:
            yes, no = self.passes(condition), self.passes(f"NOT ({condition})")
            pairs = zip(yes, no, strict=True)
            self.truths[condition] = [True if y else (False if n else None) for y, n in pairs]
        return self.truths[condition]

    def null(self, value: str) -> list[bool]:
        if value not in self.nulls:
            self.nulls[value] = self.passes(f"({value}) IS NULL")
        return self.nulls[value]


def _parts(part: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield part
    for child in part["children"]:
        yield from _parts(child)


def _follows(part: dict[str, Any]) -> bool | str | None:
    """What an AND, OR or NOT is by three-valued logic from its children's values ("" for another)."""
    tree = parse_condition(part["text"])
    while isinstance(tree, exp.Paren):
        tree = tree.this
    values = [child["value"] for child in part["children"]]
    if isinstance(tree, (exp.And, exp.Or)):
        assert all(child["kind"] == "condition" for child in part["children"]), part
        absorbing = isinstance(tree, exp.Or)  # true decides an OR, false an AND
        if absorbing in values:
            return absorbing
        return None if None in values else not absorbing
    if isinstance(tree, exp.Not) and [c["kind"] for c in part["children"]] == ["condition"]:
        return None if values[0] is None else not values[0]
    return ""


def _faults(answer: dict[str, Any], index: int, stream: _StreamFilter) -> list[str]:
    """Where the answer for the index-th alert differs from the stream filter."""
    faults = []
    if answer["verdict"] is not stream.truth(answer["expression"])[index]:
        faults.append(
            f"verdict {answer['verdict']}, the stream filter's {stream.truth(answer['expression'])}"
        )
    for part in _parts(answer["parts"]):
        if part["kind"] == "condition":
            expected = stream.truth(part["text"])[index]
            if part["value"] is not expected:
                faults.append(f"{part['text']!r} is {part['value']}, the stream filter says {expected}")
            logic = _follows(part)
            if logic != "" and logic is not part["value"]:
                faults.append(f"{part['text']!r} is {part['value']}, its children make it {logic}")
        elif (part["value"] is None) != stream.null(part["text"])[index]:
            faults.append(f"value {part['text']!r} is {part['value']!r}; null for the stream filter?")
    return faults


def _same_fields(answer: dict[str, Any], alert: Alert) -> list[str]:
    """The built-in fields shown are the alert's own."""
    faults = []
    for name in ("band", "object_id", "mag", "ra"):
        own = getattr(alert, name)
        shown = answer["fields"].get(name, own)
        if shown != (pytest.approx(own, rel=1e-6) if isinstance(own, float) else own):
            faults.append(f"field {name} is {shown!r}, the alert's {own!r}")
    return faults


def test_every_part_is_what_the_stream_filter_says_of_it(client: TestClient, alerts: list[Alert]) -> None:
    stream = _StreamFilter(alerts)
    asked = [(e, range(len(alerts))) for _, e in placed_conditions(alerts, MIXES)]
    asked += [
        (e, range(i % STRIDE, len(alerts), STRIDE)) for i, (_, e) in enumerate(placed_conditions(alerts))
    ]
    faults: list[str] = []
    seen = {True: 0, False: 0, None: 0}
    for expression, indices in asked:
        for index in indices:
            alert = alerts[index]
            answer = _explained(client, alert, expression=expression)
            assert answer["expression"] == expression
            assert answer["alert_id"] == alert.alert_id
            found = _faults(answer, index, stream) + _same_fields(answer, alert)
            faults += [f"{expression!r} on {alert.survey} {alert.alert_id}: {f}" for f in found]
            for part in _parts(answer["parts"]):
                if part["kind"] == "condition":
                    seen[part["value"]] += 1
    assert faults == [], "\n".join(faults[:40])
    assert min(seen.values()) >= 100, seen  # true, false and unknown parts alike were held to the stream


def test_a_null_field_makes_its_parts_unknown_as_written(client: TestClient, alerts: list[Alert]) -> None:
    chosen = compile_filter("band = 'r' AND mag < 99 AND lc_features.g.peak_mag IS NULL").evaluate_alerts(
        alerts
    )
    alert = next(a for a, kept in zip(alerts, chosen, strict=True) if kept)
    expression = "mag < 99 AND\n  (band = 'g' OR lc_features.g.peak_mag - mag > 1)"
    answer = _explained(client, alert, expression=expression)
    assert answer["verdict"] is None  # unknown: the filter does not pass it
    root = answer["parts"]
    assert (root["text"], root["kind"], root["value"]) == (expression, "condition", None)
    first, second = root["children"]
    mag = {"text": "mag", "kind": "value", "value": pytest.approx(alert.mag, rel=1e-6), "children": []}
    assert first == {"text": "mag < 99", "kind": "condition", "value": True, "children": [mag]}
    assert (second["text"], second["value"]) == ("band = 'g' OR lc_features.g.peak_mag - mag > 1", None)
    band, unknown = second["children"]
    assert (band["text"], band["value"]) == ("band = 'g'", False)
    assert (unknown["text"], unknown["value"]) == ("lc_features.g.peak_mag - mag > 1", None)
    (difference,) = unknown["children"]
    assert (difference["text"], difference["kind"], difference["value"]) == (
        "lc_features.g.peak_mag - mag",
        "value",
        None,
    )
    assert [c["text"] for c in difference["children"]] == ["lc_features.g.peak_mag", "mag"]
    assert answer["fields"] == {
        "mag": pytest.approx(alert.mag, rel=1e-6),
        "band": "r",
        "lc-features.g.peak_mag": None,
    }
    assert "FROM starling.alert_fields WHERE survey = " in answer["query"]


# ---- refusals -----------------------------------------------------------------------------------------

FAULTS = [
    "mag <",
    "magnitude < 19",
    "mag < 19 AND\n  nosuch.field > 2",
    "mag < 'x'",
    "band = 'r' AND ABS(band) > 1",
    "mag < 19 AND (band = 'r'",
    "object_id LIKE 5",
    "mag",
]


@pytest.mark.parametrize("expression", FAULTS)
def test_a_fault_is_a_422_at_its_line_and_column(
    client: TestClient, alerts: list[Alert], expression: str
) -> None:
    with pytest.raises(FilterSyntaxError) as live:
        compile_filter(expression)
    response = client.get(
        f"/api/alerts/{alerts[0].survey}/{alerts[0].alert_id}/explain", params={"expression": expression}
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem == {
        "loc": ["query", "expression"],
        "msg": live.value.message,
        "line": live.value.line,
        "column": live.value.column,
    }


def test_a_field_the_view_lacks_and_too_many_parts_are_refused_where_they_are(
    client: TestClient, alerts: list[Alert]
) -> None:
    url = f"/api/alerts/{alerts[0].survey}/{alerts[0].alert_id}/explain"
    lacking = "mag < 20 AND watchlists.other.count >= 1"
    with pytest.raises(FilterSyntaxError) as as_query:
        view_condition(lacking)
    (problem,) = client.get(url, params={"expression": lacking}).json()["detail"]
    assert (problem["msg"], problem["line"], problem["column"]) == (as_query.value.message, 1, 14)
    many = " OR\n".join(f"mag < {i}" for i in range(MAX_PARTS))
    compile_filter(many)  # a filter, but too many parts to explain
    response = client.get(url, params={"expression": many})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert f"more than {MAX_PARTS} parts" in problem["msg"]
    assert problem["line"] == MAX_PARTS // 2 + 1  # each line is two parts: the part past the bound


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 422, "give the condition as ?expression=, or one of your filters as ?filter="),
        ("?expression=mag<1&filter=mine", 422, "give the condition as ?expression="),
        ("?filter=mine", 404, "this service has no controller"),
        ("?filter=it's", 422, "should match pattern"),
        ("?expression=" + "m" * 20_001, 422, "at most 20000 characters"),
    ],
)
def test_refusals_say_why(
    client: TestClient, alerts: list[Alert], query: str, status: int, says: str
) -> None:
    response = client.get(f"/api/alerts/{alerts[0].survey}/{alerts[0].alert_id}/explain{query}")
    assert response.status_code == status, response.text
    assert says in response.text


def test_an_alert_the_store_lacks_is_a_404_and_no_store_a_503(client: TestClient, tmp_path: Path) -> None:
    missing = client.get("/api/alerts/ztf/1/explain", params={"expression": "mag < 19"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no alert ztf 1 in the store"
    app = web_app(tmp_path / "nothing-yet.db", tmp_path / "jobs", controller_url="http://127.0.0.1:9")
    try:
        with TestClient(app) as down:
            answer = down.get("/api/alerts/ztf/1/explain", params={"expression": "mag < 19"})
            assert answer.status_code == 503
            assert "try again" in answer.json()["detail"]
            anonymous = down.get("/api/alerts/ztf/1/explain", params={"filter": "mine"})
            assert anonymous.status_code == 401
            assert "with its owner's token" in anonymous.json()["detail"]
            unchecked = down.get(
                "/api/alerts/ztf/1/explain", params={"filter": "mine"}, headers={"Authorization": "Bearer x"}
            )
            assert unchecked.status_code == 503  # the token cannot be checked: no controller answers
    finally:
        close_web_app(app)


def test_a_condition_the_store_cannot_judge_is_refused_not_failed(
    client: TestClient, alerts: list[Alert]
) -> None:
    """PostgreSQL holds no NUL in a string and no number past a double, which the stream filter takes."""
    url = f"/api/alerts/{alerts[0].survey}/{alerts[0].alert_id}/explain"
    for expression in ("band = 'r\x00'", "mag < 1e400"):
        response = client.get(url, params={"expression": expression})
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert "the store cannot judge this condition" in response.json()["detail"][0]["msg"]


# ---- a filter by name, from a real controller ---------------------------------------------------------


@pytest.mark.kafka
def test_a_filter_by_name_is_the_owners_from_the_controller(
    kafka_bootstrap: str, tmp_path: Path, alerts: list[Alert]
) -> None:
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, f"explain{tmp_path.name[-6:]}", 0).model_dump_json())
    (tmp_path / "controller").mkdir()
    controller = ControllerProcess(pipeline, tmp_path / "controller")
    location = str(tmp_path / "s.db")
    store_alerts(location, alerts)
    app = web_app(location, tmp_path / "jobs", controller_url=controller.url)
    expression = "mag < 19.5 AND band = 'r'"
    try:
        alice, bob = controller.user_token("alice"), controller.user_token("bob")
        made = httpx.post(
            f"{controller.url}/filters",
            json={"name": "bright-r", "expression": expression},
            headers=alice,
            timeout=60,
        )
        assert made.status_code == 201, made.text
        alert = alerts[0]
        url = f"/api/alerts/{alert.survey}/{alert.alert_id}/explain"
        with TestClient(app) as client:
            by_name = client.get(url, params={"filter": "bright-r"}, headers=alice)
            assert by_name.status_code == 200, by_name.text
            typed = _explained(client, alert, expression=expression)
            assert by_name.json() == {**typed, "filter": "bright-r"}
            as_operator = client.get(url, params={"filter": "alice.bright-r"}, headers=controller.operator)
            assert as_operator.json()["parts"] == typed["parts"]
            not_bobs = client.get(url, params={"filter": "bright-r"}, headers=bob)
            assert not_bobs.status_code == 404
            assert "you have no filter named 'bright-r'" in not_bobs.text
            anonymous = client.get(url, params={"filter": "bright-r"})
            assert anonymous.status_code == 401
    finally:
        close_web_app(app)
        controller.stop()
