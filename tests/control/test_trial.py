"""Trying a filter on a store (``starling filter try``, ``POST /try-filter``): the filter as a TAP query over
the latest stored alerts, counted as the stream filter would have counted them, with the query handed
back to be run in TAP."""

from __future__ import annotations

from pathlib import Path

import pytest

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.control.trial import try_filter_on_store
from starling.errors import StoreError
from starling.store.open import open_store
from starling.vo.tap_query import TapStore
from tests.support.helpers import synthetic_alerts


def test_a_trial_counts_the_latest_alerts_as_the_stream_filter_would(tmp_path: Path) -> None:
    night = list({a.key: a for a in synthetic_alerts(600, objects=150, seed=5)}.values())
    location = tmp_path / "s.db"
    store = open_store(location)
    try:
        store.write(night, {})
    finally:
        store.close()
    expression = "mag < 20 AND ndethist >= 2"
    tried = try_filter_on_store(location, expression, 300, 4)

    latest = sorted(night, key=lambda a: (-a.mjd, a.survey, a.alert_id))[:300]
    verdicts = compile_filter(expression).evaluate_alerts(latest)
    matched = [a for a, kept in zip(latest, verdicts, strict=True) if kept]
    assert tried["alerts_examined"] == 300
    assert tried["matched"] == len(matched) > 0
    assert tried["fraction"] == round(len(matched) / 300, 6)
    assert (tried["newest_mjd"], tried["oldest_mjd"]) == (latest[0].mjd, latest[-1].mjd)
    assert [(r["survey"], r["alert_id"]) for r in tried["sample"]] == [a.key for a in matched[:4]]
    assert tried["sample"][0]["ndethist"] == len(matched[0].history.detections)
    assert "FROM starling.alert_fields" in tried["query"]
    assert "alert_fields" in tried["sql"]
    tap = TapStore(location)
    try:  # the query, as TAP runs it, selects the same alerts
        rows = tap.run(tried["query"], 1000).all_rows()
        every = tap.run("SELECT TOP 2 * FROM starling.alert_fields ORDER BY mjd DESC", 2)
        assert len(every.all_rows()) == 2
    finally:
        tap.close()
    assert [(r[0], r[1]) for r in rows] == [a.key for a in matched]
    names = [c.name for c in every.columns]  # a star stands for every field, each one name
    assert names[:3] == ["survey", "alert_id", "object_id"]
    assert {"ndethist", "history-summary.peak_mag", "xmatch.gaia.dist_arcsec"} <= set(names)


def test_a_bad_filter_is_refused_before_the_store_is_looked_at(tmp_path: Path) -> None:
    with pytest.raises(FilterSyntaxError, match="unknown field 'ndethst'"):
        try_filter_on_store(tmp_path / "absent.db", "ndethst > 2", 100, 5)
    with pytest.raises(StoreError, match="no store at"):
        try_filter_on_store(tmp_path / "absent.db", "ndethist > 2", 100, 5)
