"""The PostgreSQL store against a real server: the same rows as SQLite, idempotent from any number of
writers in any order, history written once, cutouts kept, retention, and migrations."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from starling.alert.model import Alert
from starling.errors import StoreError
from starling.store import migrate
from starling.store.open import open_store
from starling.store.retention import RetentionPolicy
from tests.support.helpers import dump_store, synthetic_alerts
from tests.support.sentinels import real_alerts


def _write(
    location: str | Path, alerts: Sequence[Alert], batch: int = 50, cutouts: Path | None = None
) -> None:
    store = open_store(location, cutouts=cutouts)
    try:
        for start in range(0, len(alerts), batch):
            chunk = alerts[start : start + batch]
            store.write(chunk, {"bright": [a for a in chunk if a.mag is not None and a.mag < 19.0]})
    finally:
        store.close()


@pytest.fixture(scope="module")
def night() -> list[Alert]:
    """A synthetic night whose objects come back many times, with growing histories."""
    return synthetic_alerts(1500, objects=120, seed=21)


@pytest.mark.samples
def test_real_alerts_make_the_same_rows_and_cutouts_on_both_backends(
    samples: Path, postgres_url: str, tmp_path: Path
) -> None:
    alerts = real_alerts(samples / "realworld")
    assert {a.survey for a in alerts} == {"ztf", "rubin"}
    _write(tmp_path / "s.db", alerts, batch=7, cutouts=tmp_path / "sqlite-cutouts")
    _write(postgres_url, alerts, batch=7, cutouts=tmp_path / "pg-cutouts")
    on_sqlite, on_postgres = dump_store(tmp_path / "s.db"), dump_store(postgres_url)
    assert on_sqlite == on_postgres
    assert len(on_postgres["alerts"]) == len({a.key for a in alerts})
    assert len(on_postgres["forced_photometry"]) > 1000  # the LSSTCam deep-field alerts' forced sources
    for location, folder in ((tmp_path / "s.db", "sqlite-cutouts"), (postgres_url, "pg-cutouts")):
        store = open_store(location, cutouts=tmp_path / folder)
        try:
            for alert in alerts:
                assert alert.cutouts, alert
                for role, cutout in alert.cutouts.items():
                    assert store.cutout(alert.survey, alert.alert_id, role) == cutout.data
            with pytest.raises(StoreError, match="no alert"):
                store.cutout("ztf", 1, "science")
        finally:
            store.close()


def test_a_replay_in_any_order_from_many_writers_leaves_the_same_rows(
    night: list[Alert], postgres_url: str, tmp_path: Path
) -> None:
    _write(tmp_path / "once.db", night)
    expected = dump_store(tmp_path / "once.db")
    # Four writers at once, each with an overlapping, shuffled part of the night, then all of it again.
    shuffled = list(night)
    random.Random(4).shuffle(shuffled)
    parts = [shuffled[i::3] + shuffled[: len(shuffled) // 5] for i in range(3)] + [list(reversed(night))]
    errors: list[BaseException] = []

    def writer(part: list[Alert]) -> None:
        try:
            _write(postgres_url, part, batch=40)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dump_store(postgres_url) == expected
    _write(postgres_url, night)
    assert dump_store(postgres_url) == expected


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_history_the_store_holds_is_not_written_again(
    backend: str, night: list[Alert], postgres_url: str, tmp_path: Path
) -> None:
    location = postgres_url if backend == "postgresql" else str(tmp_path / "s.db")
    store = open_store(location)
    try:
        carried = sum(
            len(a.history.detections) + len(a.history.upper_limits) + len(a.history.forced) for a in night
        )
        first = [store.write(night[i : i + 50], {}) for i in range(0, len(night), 50)]
        written = sum(c.history_rows for c in first)
        stored = store.count("detections") + store.count("non_detections") + store.count("forced_photometry")
        # Each history row is written about once, though the alerts carry each many times.
        assert stored <= written <= stored * 1.1
        assert carried > 3 * written
        again = [store.write(night[i : i + 50], {}) for i in range(0, len(night), 50)]
        assert sum(c.history_rows for c in again) == 0
        assert sum(c.history_rows_skipped for c in again) == carried
    finally:
        store.close()


def test_retention_drops_old_partitions_rows_and_cutout_nights(postgres_url: str, tmp_path: Path) -> None:
    alerts = synthetic_alerts(
        600, objects=60, seed=5, alerts_per_visit=10, visit_interval_s=0.75 * 86400, cutouts=True
    )
    _write(postgres_url, alerts, cutouts=tmp_path / "cutouts")
    newest = max(a.mjd for a in alerts)
    store = open_store(postgres_url, cutouts=tmp_path / "cutouts")
    try:
        before = store.counts()
        removed = store.prune(RetentionPolicy(alerts=20, annotations=20, filter_matches=20, cutouts=5))
        assert removed["alerts"] == before["alerts"] - store.count("alerts") > 0
        assert store.query("SELECT min(mjd) AS m FROM alerts")[0]["m"] >= newest - 20
        assert store.count("detections") == before["detections"]  # light curves kept for ever
        nights = {int(p.name) for p in (tmp_path / "cutouts").glob("*/*")}
        assert nights
        assert min(nights) + 1 > newest - 5
        with psycopg.connect(postgres_url) as conn:
            partitions = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'alerts'::regclass"
            ).fetchone()
        assert partitions is not None
        assert partitions[0] <= 3
    finally:
        store.close()


def test_migrations_run_while_writers_write(night: list[Alert], postgres_url: str) -> None:
    migrate.upgrade(postgres_url, "0002")
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        store = open_store(postgres_url)  # migrates to the head at once, beside the writes
        try:
            for start in range(0, len(night), 25):
                store.write(night[start : start + 25], {})
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()
            done.set()

    first = threading.Thread(target=writer)
    first.start()
    migrate.upgrade(postgres_url)
    first.join()
    assert errors == []
    with psycopg.connect(postgres_url) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        index = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'annotations_by_time'::regclass"
        ).fetchone()
    assert revision == (migrate.HEAD,)
    assert index == (True,)
    assert open_store(postgres_url).count("alerts") == len({a.key for a in night})


def test_a_filter_is_tried_on_the_postgres_store_as_on_sqlite(
    night: list[Alert], postgres_url: str, tmp_path: Path
) -> None:
    from starling.control.trial import try_filter_on_store

    _write(postgres_url, night)
    _write(tmp_path / "s.db", night)
    expression = "mag < 19.5 AND ndethist >= 2"
    on_postgres = try_filter_on_store(postgres_url, expression, 1000, 5)
    on_sqlite = try_filter_on_store(tmp_path / "s.db", expression, 1000, 5)
    assert on_postgres["alerts_examined"] == on_sqlite["alerts_examined"] == 1000
    assert on_postgres["matched"] == on_sqlite["matched"] > 0


def test_the_next_windows_partitions_are_made_before_a_reader_could_hold_them_up(postgres_url: str) -> None:
    """Making a partition locks its parent table and waits for every reader of it (a long TAP query). The
    writer makes the next window's partitions ahead, so a batch crossing into it does not wait for a reader
    that holds the table."""
    alerts = synthetic_alerts(40, objects=10, seed=9)
    first, later = alerts[:20], alerts[20:]
    for alert in later:  # into the next 30-day window
        object.__setattr__(alert, "mjd", alert.mjd + 30.0)
    store = open_store(postgres_url)
    try:
        store.write(first, {})
        with psycopg.connect(postgres_url) as reader:
            reader.execute("SELECT count(*) FROM alerts").fetchone()  # its transaction holds the table
            done = threading.Event()
            writer = threading.Thread(target=lambda: (store.write(later, {}), done.set()), daemon=True)
            writer.start()
            assert done.wait(20), "the write waited for the reader: its partition was not made ahead"
            reader.rollback()
        assert store.count("alerts") == 40
    finally:
        store.close()
