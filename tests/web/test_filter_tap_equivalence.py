"""A stream filter and a TAP query are one language: for every construct of the filter language, the
alerts a stream filter matches (``compile_filter(...).evaluate_alerts``) are the alerts its TAP query
(``filter_as_query``, on ``starling.alert_fields``) returns, on SQLite and on PostgreSQL, over the real
sample alerts and over a synthetic night.

Both are annotated by the annotators of ``examples/pipelines/annotated.toml``, with a watchlist, a map
and a catalogue about some of the alerts (``tests.support.annotated``, which holds the conditions too).
Each condition matches some alerts and not all of them (asserted), so that the comparison means
something. Every query's ADQL and the SQL each backend ran are recorded in a JSON file (under the
test's ``tmp_path`` and ``var/test-records/filter_tap_equivalence.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from starling.adql.filter_query import filter_as_query
from starling.adql.language import compile_filter
from starling.alert.model import Alert
from starling.core.component import RawMessage
from starling.testing import sample_messages
from starling.vo.tap_query import TapStore
from tests.support.annotated import annotated_alerts, placed_conditions, store_alerts
from tests.support.helpers import synthetic_messages
from tests.support.paths import REPO

RECORD = REPO / "var" / "test-records" / "filter_tap_equivalence.json"
_RECORDED: dict[str, dict[str, Any]] = {}  # condition -> its queries and counts, over the module's tests


@pytest.fixture(scope="module")
def real_alerts(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    messages = [
        m for sub in ("realworld", "ztf/alerts", "rubin/samples") for m in sample_messages(samples / sub)
    ]
    return annotated_alerts(messages, tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def synthetic_night(tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    night = synthetic_messages(1200, objects=300, seed=31, cutouts=False)
    return annotated_alerts(
        [RawMessage(payload, origin) for origin, payload in night], tmp_path_factory.mktemp("night")
    )


def _write_records(tmp_path: Path) -> None:
    document = json.dumps({"conditions": list(_RECORDED.values())}, indent=1)
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    for path in (tmp_path / RECORD.name, RECORD):
        path.write_text(document)
        print(f"filter/TAP equivalence recorded in {path}")


@pytest.mark.samples
@pytest.mark.parametrize("data", ["real", "synthetic"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_filter_and_its_tap_query_match_the_same_alerts(
    data: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    alerts: list[Alert] = request.getfixturevalue("real_alerts" if data == "real" else "synthetic_night")
    location = request.getfixturevalue("postgres_url") if backend == "postgres" else tmp_path / "s.db"
    store_alerts(location, alerts)
    keys = [a.key for a in alerts]
    faults: list[str] = []
    tap = TapStore(location)
    try:
        for written, condition in placed_conditions(alerts):
            verdicts = compile_filter(condition).evaluate_alerts(alerts)
            expected = {key for key, kept in zip(keys, verdicts, strict=True) if kept}
            query = filter_as_query(condition)
            result = tap.run(query, maxrec=len(alerts) + 1)
            found = {(survey, int(alert_id)) for survey, alert_id in result.all_rows()}
            entry = _RECORDED.setdefault(
                written, {"condition": written, "adql": {}, "sql": {}, "matched": {}}
            )
            entry["adql"][data] = query
            entry["sql"][f"{data}/{backend}"] = result.sql
            entry["matched"][f"{data}/{backend}"] = {"filter": len(expected), "tap": len(found)}
            if not 0 < len(expected) < len(alerts):
                faults.append(f"{condition!r} matches {len(expected)} of {len(alerts)}: it shows nothing")
            if found != expected:
                faults.append(
                    f"{condition!r}: the filter matches {len(expected)}, TAP returns {len(found)} "
                    f"(filter only: {sorted(expected - found)[:3]}; TAP only: {sorted(found - expected)[:3]})"
                )
    finally:
        tap.close()
        _write_records(tmp_path)
    assert faults == [], "\n".join(faults)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_least_int64_literal_is_one_whole_number_in_a_filter_and_in_tap(
    backend: str, synthetic_night: list[Alert], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``-9223372036854775808`` is int64's least, exact in the filter and a bigint in TAP's SQL (it was
    the negation of 9223372036854775808, a real: the arithmetic below was done in doubles, which round
    by 1024 there, and matched no alert or several)."""
    least = -(2**63)
    ids = sorted({a.alert_id for a in synthetic_night})
    chosen, middle = ids[len(ids) // 3], ids[len(ids) // 2]
    location = request.getfixturevalue("postgres_url") if backend == "postgres" else tmp_path / "s.db"
    store_alerts(location, synthetic_night)
    keys = [a.key for a in synthetic_night]
    exact = {
        f"alert_id + {least} = {least + chosen}": lambda i: i == chosen,
        f"alert_id + -9223372036854775808 > {least + middle}": lambda i: i > middle,
        f"alert_id + - 9223372036854775808 <= {least + middle}": lambda i: i <= middle,
        f"alert_id > -(-9223372036854775808) OR alert_id = {chosen}": lambda i: i == chosen,
    }
    tap = TapStore(location)
    try:
        for condition, holds in exact.items():
            verdicts = compile_filter(condition).evaluate_alerts(synthetic_night)
            expected = {key for key, kept in zip(keys, verdicts, strict=True) if kept}
            assert expected == {a.key for a in synthetic_night if holds(a.alert_id)}, condition
            result = tap.run(filter_as_query(condition), maxrec=len(keys) + 1)
            assert {(survey, int(alert_id)) for survey, alert_id in result.all_rows()} == expected, condition
            if "-(" not in condition:  # negated, it is beyond int64: a double
                assert "9223372036854775808 AS" not in result.sql.upper(), result.sql  # a bigint
    finally:
        tap.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_contains_compared_with_neither_0_nor_1(
    backend: str, synthetic_night: list[Alert], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """CONTAINS is 0 or 1: ``= 2`` and ``= -1`` hold for no alert, ``<> 2`` for every one (TAP read any
    number but 1 as 0: ``= 2`` was NOT CONTAINS)."""
    location = request.getfixturevalue("postgres_url") if backend == "postgres" else tmp_path / "s.db"
    store_alerts(location, synthetic_night)
    keys = {a.key for a in synthetic_night}
    (_, cone), *_ = placed_conditions(
        synthetic_night, ["CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 20))"]
    )
    tap = TapStore(location)
    try:
        for condition, expected in {
            f"{cone} = 2": set(),
            f"{cone} = -1": set(),
            f"{cone} <> 2": keys,
        }.items():
            verdicts = compile_filter(condition).evaluate_alerts(synthetic_night)
            assert {a.key for a, kept in zip(synthetic_night, verdicts, strict=True) if kept} == expected
            result = tap.run(filter_as_query(condition), maxrec=len(keys) + 1)
            assert {(survey, int(alert_id)) for survey, alert_id in result.all_rows()} == expected, condition
    finally:
        tap.close()
