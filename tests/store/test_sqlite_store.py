"""The SQLite store: batches in, the right rows out, and replays change nothing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from starling.alert.decoder import AlertDecoder
from starling.errors import StoreError
from starling.store.open import open_store
from tests.support.helpers import dump_store, run_replay, synthetic_messages, write_messages


def test_replaying_the_same_alerts_twice_leaves_the_same_rows(tmp_path: Path) -> None:
    paths = write_messages(tmp_path / "in", synthetic_messages(300, seed=3))
    run_replay(paths, tmp_path / "out")
    first = dump_store(tmp_path / "out" / "starling.db")
    run_replay(paths, tmp_path / "out")
    second = dump_store(tmp_path / "out" / "starling.db")
    assert first == second
    assert len(first["alerts"]) == 300
    assert len(first["detections"]) > 300  # histories add earlier detections


def test_shuffled_replay_gives_the_same_rows(tmp_path: Path) -> None:
    """Objects follow their latest alert by time, not by arrival: order does not matter."""
    paths = write_messages(tmp_path / "in", synthetic_messages(200, seed=5))
    run_replay(paths, tmp_path / "ordered")
    shuffled = list(paths)
    random.Random(1).shuffle(shuffled)
    run_replay(shuffled, tmp_path / "shuffled")
    assert dump_store(tmp_path / "ordered" / "starling.db") == dump_store(
        tmp_path / "shuffled" / "starling.db"
    )


def test_rows_hold_what_the_alerts_say(tmp_path: Path, decoder: AlertDecoder) -> None:
    messages = synthetic_messages(120, seed=11)
    paths = write_messages(tmp_path / "in", messages)
    run_replay(paths, tmp_path / "out")
    alerts = [decoder.decode(payload, origin)[0] for origin, payload in messages]
    latest = {}
    for alert in alerts:
        key = (alert.survey, alert.object_id)
        if key not in latest or alert.mjd >= latest[key].mjd:
            latest[key] = alert
    store = open_store(tmp_path / "out" / "starling.db")
    try:
        assert store.count("objects") == len(latest)
        for (survey, object_id), alert in list(latest.items())[:25]:
            [row] = store.query(
                "SELECT * FROM objects WHERE survey = ? AND object_id = ?", [survey, object_id]
            )
            assert row["last_alert_id"] == alert.alert_id
            assert row["ra"] == pytest.approx(alert.ra)
            assert row["n_detections"] == len(alert.history.detections)
            detection_ids = {
                r["detection_id"]
                for r in store.query(
                    "SELECT detection_id FROM detections WHERE survey = ? AND object_id = ?",
                    [survey, object_id],
                )
            }
            assert {d.detection_id for d in alert.history.detections} <= detection_ids
        bright = {a.alert_id for a in alerts if a.mag is not None and a.mag < 19.0}
        matched = {
            r["alert_id"] for r in store.query("SELECT alert_id FROM filter_matches WHERE filter = 'bright'")
        }
        assert matched == bright
        annotated = store.query("SELECT count(*) AS n FROM annotations WHERE annotator = 'history-summary'")
        assert annotated[0]["n"] == len(alerts)
    finally:
        store.close()


def test_store_refuses_unknown_tables_and_bad_sql(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    try:
        with pytest.raises(StoreError, match="no table 'users'"):
            store.count("users")
        with pytest.raises(StoreError, match="query failed"):
            store.query("SELEC nonsense")
    finally:
        store.close()
