"""TAP over the store, as astronomers query it: pyvo as the client, on SQLite and on a real PostgreSQL,
checked against what the alerts hold (brute force in numpy for the sky, the stream filters for the
conditions)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pyvo

from starling.adql.geometry import distance_deg
from starling.adql.language import compile_filter
from starling.alert.model import Alert
from starling.control.server import BackgroundServer
from starling.store.open import open_store
from starling.web.app import close_web_app, web_app
from tests.support.helpers import synthetic_alerts


@pytest.fixture(scope="module")
def night() -> list[Alert]:
    return synthetic_alerts(1200, objects=300, seed=31)


def _fill(location: str | Path, alerts: list[Alert]) -> None:
    store = open_store(location)
    try:
        for start in range(0, len(alerts), 200):
            chunk = alerts[start : start + 200]
            store.write(chunk, {"bright": [a for a in chunk if a.mag is not None and a.mag < 19.0]})
    finally:
        store.close()


def _matched(condition: str, alerts: list[Alert]) -> set[int]:
    """The alerts a stream filter with this condition lets through."""
    verdicts = compile_filter(condition).evaluate_alerts(alerts)
    return {a.alert_id for a, passed in zip(alerts, verdicts, strict=True) if passed}


@pytest.fixture(params=["sqlite", "postgresql"])
def tap(request: pytest.FixtureRequest, night: list[Alert], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the TAP base URL, the store's location) with the night stored."""
    if request.param == "postgresql":
        location: str = request.getfixturevalue("postgres_url")
    else:
        location = str(tmp_path / "starling.db")
    _fill(location, night)
    app = web_app(location, tmp_path / "jobs")
    server = BackgroundServer(app)
    port = server.start()
    try:
        yield f"http://127.0.0.1:{port}/tap", location
    finally:
        server.stop()
        close_web_app(app)


def test_a_query_runs_with_the_columns_metadata(tap: tuple[str, str], night: list[Alert]) -> None:
    service = pyvo.dal.TAPService(tap[0])
    result = service.run_sync(
        "SELECT TOP 5 alert_id, ra, dec, mag FROM starling.alerts ORDER BY mjd DESC, alert_id"
    )
    latest = sorted(night, key=lambda a: (-a.mjd, a.alert_id))[:5]
    assert [int(row["alert_id"]) for row in result] == [a.alert_id for a in latest]
    table = result.to_table()
    assert str(table["ra"].unit) == "deg"
    assert str(table["mag"].unit) == "mag"
    counted = service.run_sync("SELECT COUNT(*) AS n FROM alerts")
    assert int(counted[0]["n"]) == len({a.key for a in night})


def test_maxrec_cuts_with_an_overflow_and_errors_say_where(tap: tuple[str, str]) -> None:
    service = pyvo.dal.TAPService(tap[0])
    result = service.run_sync("SELECT alert_id FROM starling.alerts", maxrec=7)
    assert len(result) == 7
    assert result.query_status == "OVERFLOW"
    assert service.run_sync("SELECT TOP 3 alert_id FROM starling.alerts", maxrec=7).query_status == "OK"
    # Cut by the service's own limit, not the client's: pyvo warns.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyvo.dal.TAPService(tap[0]).run_sync("SELECT alert_id FROM starling.alerts")
    assert not caught  # under the default limit of 10,000 rows
    with pytest.raises(pyvo.dal.DALQueryError, match=r"line 1, column 8: unknown column 'nope'"):
        service.run_sync("SELECT nope FROM starling.alerts")
    with pytest.raises(pyvo.dal.DALQueryError, match="only queries"):
        service.run_sync("DELETE FROM starling.alerts")
    with pytest.raises(pyvo.dal.DALQueryError, match="unknown table"):
        service.run_sync("SELECT * FROM users")


def test_tables_capabilities_and_tap_schema(tap: tuple[str, str]) -> None:
    service = pyvo.dal.TAPService(tap[0])
    names = {table.name for table in service.tables}
    assert {"starling.alerts", "starling.objects", "starling.detections", "TAP_SCHEMA.columns"} <= names
    alerts = service.tables["starling.alerts"]
    assert {c.name for c in alerts.columns} >= {"alert_id", "ra", "dec", "mjd", "mag"}
    assert any(c.standardid.startswith("ivo://ivoa.net/std/TAP") for c in service.capabilities)
    described = service.run_sync(
        "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = 'starling.alerts'"
    )
    by_name = {row["column_name"]: row for row in described}
    assert by_name["ra"]["unit"] == "deg"
    assert by_name["ra"]["ucd"].startswith("pos.eq.ra")


def test_cones_and_polygons_match_a_brute_force_search(tap: tuple[str, str], night: list[Alert]) -> None:
    service = pyvo.dal.TAPService(tap[0])
    stored = {a.key: a for a in night}
    ids = np.array([a.alert_id for a in stored.values()])
    ra = np.array([a.ra for a in stored.values()])
    dec = np.array([a.dec for a in stored.values()])
    rng = np.random.default_rng(8)
    for _ in range(12):
        centre = int(rng.integers(0, len(ids)))
        radius = float(rng.choice([0.01, 1.0, 10.0]))
        query = (
            "SELECT alert_id FROM starling.alerts WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {float(ra[centre])!r}, {float(dec[centre])!r}, {radius}))"
        )
        found = {int(row["alert_id"]) for row in service.run_sync(query, maxrec=100_000)}
        expected = set(ids[distance_deg(ra, dec, ra[centre], dec[centre]) <= radius].tolist())
        assert found == expected, query
    polygon = "POLYGON('ICRS', 0, -30, 60, -30, 60, 30, 0, 30)"
    found = {
        int(row["alert_id"])
        for row in service.run_sync(
            f"SELECT alert_id FROM starling.alerts WHERE CONTAINS(POINT('ICRS', ra, dec), {polygon}) = 1",
            maxrec=100_000,
        )
    }
    assert found == _matched(f"CONTAINS(POINT('ICRS', ra, dec), {polygon}) = 1", list(stored.values()))


@pytest.mark.parametrize(
    "condition",
    [
        "mag < 19.5",
        "mag BETWEEN 18 AND 20 AND band = 'r'",
        "band IN ('g', 'i') OR reliability > 0.9",
        "mag_err IS NOT NULL AND mag_err > 0.05",
        "NOT (dec > 0)",
        "ABS(dec) < 30 AND SQRT(POWER(mag, 2)) > 18.5",
        "LOWER(band) LIKE 'r%'",
    ],
)
def test_a_filter_and_a_tap_query_match_the_same_alerts(
    condition: str, tap: tuple[str, str], night: list[Alert]
) -> None:
    service = pyvo.dal.TAPService(tap[0])
    stored = list({a.key: a for a in night}.values())
    expected = _matched(condition, stored)
    found = {
        int(row["alert_id"])
        for row in service.run_sync(f"SELECT alert_id FROM starling.alerts WHERE {condition}", maxrec=100_000)
    }
    assert found == expected
    assert expected  # each condition matches something in the night, so the comparison means something


def test_a_cone_uses_the_q3c_index_on_postgres(postgres_url: str, night: list[Alert]) -> None:
    from starling.adql.query import check_query, parse_query
    from starling.adql.sql_backend import to_sql
    from starling.vo.tap_query import served_tables

    _fill(postgres_url, night)
    text = (
        "SELECT alert_id FROM starling.alerts "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 0.01))"
    )
    sql = to_sql(check_query(parse_query(text), text, served_tables()), "postgres")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("SET enable_seqscan = off")  # a few hundred rows: the planner would scan them anyway
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))  # type: ignore[arg-type]
    assert "alerts_by_position" in plan or "q3c_ang2ipix" in plan, plan


def test_async_jobs_run_abort_and_survive_a_restart(tap: tuple[str, str], tmp_path: Path) -> None:
    service = pyvo.dal.TAPService(tap[0])
    result = service.run_async("SELECT TOP 4 alert_id, mag FROM starling.alerts ORDER BY alert_id")
    assert len(result) == 4
    # A query that would run for minutes: aborted, it stops at once and frees its thread.
    slow = service.submit_job(
        "SELECT COUNT(*) AS n FROM starling.alerts AS a, starling.alerts AS b, starling.alerts AS c"
    )
    slow.run()
    slow.wait(phases=["EXECUTING", "COMPLETED", "ERROR"], timeout=30)
    assert slow.phase == "EXECUTING"
    slow.abort()
    assert slow.phase == "ABORTED"
    quick = service.run_async("SELECT COUNT(*) AS n FROM starling.alerts", timeout=30)
    assert int(quick[0]["n"]) > 0
    failing = service.submit_job("SELECT nope FROM starling.alerts")
    failing.run()
    failing.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=30)
    assert failing.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="unknown column 'nope'"):
        failing.raise_if_error()


def test_jobs_survive_a_restart_of_the_service(tmp_path: Path, night: list[Alert]) -> None:
    location = str(tmp_path / "starling.db")
    _fill(location, night[:200])
    first = web_app(location, tmp_path / "jobs")
    server = BackgroundServer(first)
    port = server.start()
    service = pyvo.dal.TAPService(f"http://127.0.0.1:{port}/tap")
    done = service.submit_job("SELECT COUNT(*) AS n FROM starling.alerts")
    done.run()
    done.wait(phases=["COMPLETED", "ERROR"], timeout=30)
    waiting = service.submit_job("SELECT TOP 1 alert_id FROM starling.alerts")  # PENDING: never run
    server.stop()
    close_web_app(first)
    second = web_app(location, tmp_path / "jobs")
    server = BackgroundServer(second)
    port = server.start()
    try:
        service = pyvo.dal.TAPService(f"http://127.0.0.1:{port}/tap")
        jobs = {job.jobid: job.phase for job in service.get_job_list()}
        assert jobs[waiting.job_id] == "PENDING"
        assert "COMPLETED" in jobs.values()
        job = pyvo.dal.AsyncTAPJob(f"http://127.0.0.1:{port}/tap/async/{waiting.job_id}")
        job.run()
        job.wait(phases=["COMPLETED", "ERROR"], timeout=30)
        assert len(job.fetch_result()) == 1
        assert jobs[done.job_id] == "COMPLETED"
        again = pyvo.dal.AsyncTAPJob(f"http://127.0.0.1:{port}/tap/async/{done.job_id}")
        assert int(again.fetch_result()[0]["n"]) == len({a.key for a in night[:200]})
    finally:
        server.stop()
        close_web_app(second)


def test_every_example_runs(tap: tuple[str, str]) -> None:
    from astropy.table import Table

    from starling.vo.tap_examples import EXAMPLES

    service = pyvo.dal.TAPService(tap[0])
    assert {e.key for e in EXAMPLES} >= {"lightcurve", "cone", "timewindow", "filter", "crossmatch"}
    targets = Table({"target": ["t0", "t1"], "ra": [150.1, 10.0], "dec": [2.2, -5.0]})
    for example in EXAMPLES:
        uploads = {example.upload: targets} if example.upload else None
        result = service.run_sync(example.query, uploads=uploads)
        assert result.query_status == "OK", example.key
    assert len(service.run_sync(EXAMPLES[-1].query)) > 5  # the alerts table's columns
    assert len(service.examples) == len(EXAMPLES)


def test_an_uploaded_table_joins_the_alerts(tap: tuple[str, str], night: list[Alert]) -> None:
    """A crossmatch of a user's positions against the alerts, in one query, sync and async."""
    from astropy.table import Table

    stored = list({a.key: a for a in night}.values())
    targets = Table(
        {
            "target": [f"t{i}" for i in range(40)],
            "ra": [a.ra + 0.0001 for a in stored[:40]],
            "dec": [a.dec for a in stored[:40]],
        }
    )
    query = (
        "SELECT u.target, a.alert_id, DISTANCE(POINT('ICRS', u.ra, u.dec), POINT('ICRS', a.ra, a.dec)) AS d "
        "FROM TAP_UPLOAD.targets AS u JOIN starling.alerts AS a "
        "ON 1 = CONTAINS(POINT('ICRS', a.ra, a.dec), CIRCLE('ICRS', u.ra, u.dec, 1.5 / 3600))"
    )
    service = pyvo.dal.TAPService(tap[0])
    for result in (
        service.run_sync(query, uploads={"targets": targets}, maxrec=100_000),
        service.run_async(query, uploads={"targets": targets}, maxrec=100_000),
    ):
        pairs = {(str(row["target"]), int(row["alert_id"])) for row in result}
        expected = {
            (f"t{i}", b.alert_id)
            for i, a in enumerate(stored[:40])
            for b in stored
            if distance_deg(np.array([a.ra + 0.0001]), np.array([a.dec]), b.ra, b.dec)[0] <= 1.5 / 3600
        }
        assert pairs == expected
        assert {f"t{i}" for i in range(40)} <= {t for t, _ in pairs}
    # By URL, under the webhooks' egress policy: the service's own network is out of reach.
    with pytest.raises(pyvo.dal.DALQueryError, match=r"127\.0\.0\.1 is .*loopback"):
        service.run_sync("SELECT * FROM TAP_UPLOAD.x", uploads={"x": "http://127.0.0.1:1/table.xml"})
