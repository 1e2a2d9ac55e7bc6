"""Each user reads their own filters' matches and the broker's public ones, never another user's (so too
the hits of their own watchlists and watchmaps, kept as their annotations): the rule held by the database
itself (row-level security on PostgreSQL, a guarded view on SQLite), through every way a query can reach
a table (JOIN, UNION, subqueries, TAP_SCHEMA), and end to end through ``starling web`` with tokens
checked by a real controller."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import pyvo
import requests

from starling.alert.model import Alert
from starling.control.server import BackgroundServer
from starling.store.access import READER_ROLE, guard_sqlite, may_read_match
from starling.store.open import open_store
from starling.vo.tap_query import TapQueryError, TapStore
from starling.web.app import close_web_app, web_app
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_alerts
from tests.support.kafka import chain_spec

FILTERS = ("public-bright", "alice.mine", "bob.secret")


WATCHED = {"favourites": "operator", "alist": "alice", "bmap": "bob"}


@pytest.fixture(scope="module")
def night() -> list[Alert]:
    alerts = synthetic_alerts(300, objects=60, seed=5)
    for alert in alerts:  # every alert on the operator's list, alice's and bob's, as the annotator marks it
        alert.annotations["watchlists"] = {
            name: {"target": f"t-{name}", "dist_arcsec": 0.1, "count": 1, "owner": owner}
            for name, owner in WATCHED.items()
        }
    return alerts


def _fill(location: str, alerts: list[Alert]) -> None:
    store = open_store(location)
    try:  # each filter matches a different third of the night
        store.write(alerts, {name: alerts[i::3] for i, name in enumerate(FILTERS)})
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, night: list[Alert], tmp_path: Path) -> Iterator[TapStore]:
    sqlite = request.param == "sqlite"
    location = str(tmp_path / "s.db") if sqlite else request.getfixturevalue("postgres_url")
    _fill(location, night)
    tap = TapStore(location)
    try:
        yield tap
    finally:
        tap.close()


def _filters(tap: TapStore, query: str, viewer: str | None) -> set[str]:
    return {str(row[0]) for row in tap.run(query, 100_000, viewer=viewer).all_rows()}


WAYS = {
    "plain": "SELECT filter FROM starling.filter_matches",
    "join": "SELECT m.filter FROM starling.alerts AS a JOIN starling.filter_matches AS m "
    "ON a.survey = m.survey AND a.alert_id = m.alert_id",
    "union": "SELECT filter FROM starling.filter_matches UNION SELECT 'none' FROM starling.objects "
    "WHERE object_id = 'no such object'",
    "subquery": "SELECT filter FROM (SELECT filter, alert_id FROM starling.filter_matches) AS m",
    "in": "SELECT m.filter FROM starling.filter_matches AS m WHERE m.alert_id IN "
    "(SELECT alert_id FROM starling.filter_matches WHERE filter LIKE 'bob%')",
    "exists": "SELECT 'bob.secret' FROM starling.alerts AS a WHERE EXISTS (SELECT 1 FROM "
    "starling.filter_matches AS m WHERE m.alert_id = a.alert_id AND m.filter = 'bob.secret')",
    "cte": "WITH m AS (SELECT filter FROM starling.filter_matches) SELECT filter FROM m",
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_each_user_sees_their_matches_and_the_public_ones(store: TapStore, way: str) -> None:
    query = WAYS[way]
    if way in ("exists", "in"):  # asking after bob's matches: only bob learns anything
        assert _filters(store, query, None) == set()
        assert _filters(store, query, "alice") == set()
        assert _filters(store, query, "bob") == {"bob.secret"}
        return
    assert _filters(store, query, None) == {"public-bright"}
    assert _filters(store, query, "alice") == {"public-bright", "alice.mine"}
    assert _filters(store, query, "bob") == {"public-bright", "bob.secret"}


def test_counts_and_tap_schema_give_nothing_away(store: TapStore, night: list[Alert]) -> None:
    counted = store.run("SELECT COUNT(*) FROM starling.filter_matches", 10, viewer="alice").all_rows()
    assert counted[0][0] == len(night[0::3]) + len(night[1::3])
    schema = store.run(
        "SELECT table_name, column_name FROM TAP_SCHEMA.columns WHERE table_name LIKE '%filter_matches%'",
        100,
        viewer=None,
    ).all_rows()
    assert schema  # the table is described, with its columns ...
    values = {str(v) for row in schema for v in row}
    assert not any("bob" in v or "alice" in v for v in values)  # ... and no user's filter in it


@pytest.mark.parametrize("viewer", [None, "alice", "bob"])
def test_each_user_reads_the_hits_of_their_own_watchlists_alone(
    store: TapStore, viewer: str | None, night: list[Alert]
) -> None:
    rows = store.run("SELECT annotator, payload FROM starling.annotations", 100_000, viewer=viewer).all_rows()
    lists: dict[str, set[str]] = {}
    for annotator, payload in rows:
        lists.setdefault(str(annotator), set()).update(json.loads(str(payload)))
    mine = {f"{viewer}.watchlists": {n for n, o in WATCHED.items() if o == viewer}} if viewer else {}
    assert {k: v for k, v in lists.items() if k.endswith("watchlists")} == {
        "watchlists": {"favourites"},
        **mine,
    }
    # The filter language's view reads the broker's own list, for everyone alike.
    marked = store.run(
        'SELECT COUNT(*) FROM starling.alert_fields WHERE "watchlists.favourites.target" IS NOT NULL',
        10,
        viewer=viewer,
    ).all_rows()
    assert marked[0][0] == len(night)
    bobs = store.run(
        "SELECT COUNT(*) FROM starling.annotations WHERE annotator LIKE 'bob%'", 10, viewer=viewer
    ).all_rows()
    assert bobs[0][0] == (len(night) if viewer == "bob" else 0)


def test_the_sqlite_table_cannot_be_read_around_the_guard(tmp_path: Path, night: list[Alert]) -> None:
    location = str(tmp_path / "s.db")
    _fill(location, night)
    db = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    guard_sqlite(db, "alice")
    for sql in (
        "SELECT * FROM main.filter_matches",
        "SELECT count(*) FROM main.filter_matches",
        "SELECT filter FROM main.filter_matches WHERE filter = 'bob.secret'",
        "SELECT payload FROM main.annotations WHERE annotator = 'bob.watchlists'",
    ):
        with pytest.raises(sqlite3.DatabaseError, match=r"not authorized|prohibited"):
            db.execute(sql).fetchall()
    seen = {row[0] for row in db.execute("SELECT filter FROM filter_matches")}
    assert seen == {"public-bright", "alice.mine"}
    annotators = {row[0] for row in db.execute("SELECT annotator FROM annotations")}
    assert "bob.watchlists" not in annotators
    assert {"watchlists", "alice.watchlists"} <= annotators
    db.close()
    tap = TapStore(location)
    try:  # and ADQL cannot name the table behind the view
        with pytest.raises(TapQueryError):
            tap.run("SELECT filter FROM main.filter_matches", 10, viewer="alice").all_rows()
    finally:
        tap.close()


def test_postgres_reader_is_held_by_row_level_security(postgres_url: str, night: list[Alert]) -> None:
    """As the reader role, whatever SQL runs: the policy holds, and partitions cannot be read directly."""
    _fill(postgres_url, night)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {READER_ROLE}")
        conn.execute("SELECT set_config('starling.viewer', 'alice', false)")
        seen = {row[0] for row in conn.execute("SELECT DISTINCT filter FROM filter_matches")}
        assert seen == {"public-bright", "alice.mine"}
        annotators = {row[0] for row in conn.execute("SELECT DISTINCT annotator FROM annotations")}
        assert "bob.watchlists" not in annotators
        assert {"watchlists", "alice.watchlists"} <= annotators
        partitions = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'filter_matches'"
            )
        ]
        assert partitions
        for partition in partitions:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {partition}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO filter_matches VALUES ('x', 'ztf', 1, 'o', 1.0)")


def test_the_rule_in_python_and_in_the_database_agree() -> None:
    assert may_read_match("public-bright", None)
    assert may_read_match("alice.mine", "alice")
    assert not may_read_match("alice.mine", None)
    assert not may_read_match("alice.mine", "bob")
    assert not may_read_match("alice.mine", "alice.mine")


@pytest.mark.kafka
def test_tokens_checked_by_the_controller_decide_what_tap_shows(
    kafka_bootstrap: str, tmp_path: Path, night: list[Alert]
) -> None:
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, f"access{tmp_path.name[-6:]}", 0).model_dump_json())
    (tmp_path / "controller").mkdir()
    controller = ControllerProcess(pipeline, tmp_path / "controller")
    location = str(tmp_path / "s.db")
    _fill(location, night)
    app = web_app(location, tmp_path / "jobs", controller_url=controller.url)
    server = BackgroundServer(app)
    try:
        base = f"http://127.0.0.1:{server.start()}/tap"
        query = "SELECT DISTINCT filter FROM starling.filter_matches"
        seen = {}
        for who, headers in (("anonymous", {}), ("alice", controller.user_token("alice"))):
            session = requests.Session()  # pyvo's requests go through it, the token with each
            session.headers.update(headers)
            service = pyvo.dal.TAPService(base, session=session)
            seen[who] = {str(r["filter"]) for r in service.run_sync(query)}
            async_seen = {str(r["filter"]) for r in service.run_async(query)}
            assert async_seen == seen[who]
        assert seen == {"anonymous": {"public-bright"}, "alice": {"public-bright", "alice.mine"}}
        # The portal's API shows an alert's annotations as the store does: alice's hits to alice alone.
        one = f"{base.removesuffix('/tap')}/api/alerts/{night[0].survey}/{night[0].alert_id}"
        shown = {
            who: set(httpx.get(one, headers=headers).json()["annotations"])
            for who, headers in (("anonymous", {}), ("alice", controller.user_token("alice")))
        }
        assert "watchlists" in shown["anonymous"]
        assert not any(name.startswith(("alice.", "bob.")) for name in shown["anonymous"])
        assert "alice.watchlists" in shown["alice"]
        assert "bob.watchlists" not in shown["alice"]
        refused = httpx.get(f"{base}/sync", params={"QUERY": query}, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        alice = controller.user_token("alice")
        made = httpx.post(f"{base}/async", data={"QUERY": query}, headers=alice, follow_redirects=False)
        job_url = made.headers["location"]
        assert httpx.get(job_url, headers=alice).status_code == 200
        assert httpx.get(job_url, headers=controller.user_token("bob")).status_code == 404  # not bob's
        assert httpx.get(job_url).status_code == 404
    finally:
        server.stop()
        close_web_app(app)
        controller.stop()


def test_a_connection_kept_for_the_next_query_forgets_its_last_reader(store: TapStore) -> None:
    query = WAYS["plain"]
    for _ in range(3):  # the same kept connection, handed from one reader to the next
        assert _filters(store, query, "alice") == {"public-bright", "alice.mine"}
        assert _filters(store, query, None) == {"public-bright"}
        assert _filters(store, query, "bob") == {"public-bright", "bob.secret"}
