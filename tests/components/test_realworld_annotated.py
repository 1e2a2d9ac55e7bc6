"""Every real alert (ZTF 1.8 to 4.02, Rubin LSSTCam and its precursor) through the example pipeline with
every built-in annotator, ``examples/pipelines/annotated.toml``, in the embedded runtime, its source
replaced by the real-world files as ``starling run --input`` does. Nothing may become a dead letter, and
the store must hold, object by object, what the raw Avro holds, read with fastavro and the surveys'
rules (``tests/support/raw_alerts.py``), not through Starling's codecs: the alerts, the detections (ids,
times, bands, the survey's own measurement), the upper limits and the forced photometry (times and
bands; a ZTF forced flux of -99999 stored as NULL). Rubin's solar-system sources (``diaObjectId`` 0)
land on their own objects, ``sso-<ssObjectId>``, one per asteroid.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from starling.assembly import assemble
from starling.core.embedded import EmbeddedPipeline, RunSummary
from tests.support.paths import REPO
from tests.support.raw_alerts import FORCED_MISSING, RawObject, epoch, raw_objects, same

pytestmark = pytest.mark.samples

PIPELINE = REPO / "examples" / "pipelines" / "annotated.toml"
ANNOTATORS = ("history-summary", "lc-features", "solar-system")
Key = tuple[str, str]


@pytest.fixture(scope="module")
def run(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Path]:
    output = tmp_path_factory.mktemp("annotated")
    spec = assemble(PIPELINE, inputs=[samples / "realworld"])
    assert spec.source.use == "replay"
    assert [a.use for a in spec.annotators] == [*ANNOTATORS, "watchlists"]
    return EmbeddedPipeline(spec, output).run(), output / "starling.db"


@pytest.fixture(scope="module")
def raw(samples: Path) -> dict[Key, RawObject]:
    return raw_objects(samples / "realworld")


@pytest.fixture(scope="module")
def db(run: tuple[RunSummary, Path]) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{run[1]}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


def _by_object(db: sqlite3.Connection, sql: str) -> dict[Key, list[sqlite3.Row]]:
    found: dict[Key, list[sqlite3.Row]] = defaultdict(list)
    for row in db.execute(sql):
        found[row["survey"], row["object_id"]].append(row)
    return dict(found)


def test_no_real_alert_becomes_a_dead_letter(run: tuple[RunSummary, Path], raw: dict[Key, RawObject]) -> None:
    summary, _ = run
    assert summary.dead_letters == {}
    assert summary.dead_letter_path is None
    assert summary.stats.alerts_decoded == sum(len(o.alerts) for o in raw.values()) == 35


def test_every_object_and_alert_is_stored(db: sqlite3.Connection, raw: dict[Key, RawObject]) -> None:
    alerts = _by_object(db, "SELECT survey, object_id, alert_id FROM alerts")
    assert set(alerts) == set(raw)
    for key, found in raw.items():
        assert {row["alert_id"] for row in alerts[key]} == found.alerts, key
    objects = _by_object(db, "SELECT * FROM objects")
    assert set(objects) == set(raw)
    for key, [row] in objects.items():  # each object here has one alert: its counts are its history's
        assert (row["n_detections"], row["n_upper_limits"]) == (
            len(raw[key].detections),
            len(raw[key].upper_limits),
        ), key


def test_the_detections_are_the_alerts_detections(db: sqlite3.Connection, raw: dict[Key, RawObject]) -> None:
    stored = _by_object(db, "SELECT survey, object_id, detection_id, mjd, band, mag, flux FROM detections")
    assert set(stored) == set(raw)
    for key, found in raw.items():
        rows = {row["detection_id"]: row for row in stored[key]}
        assert set(rows) == set(found.detections), key
        for detection_id, (mjd, band, measured) in found.detections.items():
            row = rows[detection_id]
            assert epoch(row["mjd"], row["band"]) == epoch(mjd, band), (key, detection_id)
            # ZTF sends a magnitude, Rubin a flux: each is stored as sent.
            assert same(row["mag"] if key[0] == "ztf" else row["flux"], measured), (key, detection_id)


def test_the_upper_limits_are_the_alerts_upper_limits(
    db: sqlite3.Connection, raw: dict[Key, RawObject]
) -> None:
    stored = _by_object(db, "SELECT survey, object_id, mjd, band, limiting_mag FROM non_detections")
    assert sum(len(o.upper_limits) for o in raw.values()) == 133  # all ZTF: these Rubin alerts carry none
    for key, found in raw.items():
        rows = {epoch(row["mjd"], row["band"]): row for row in stored.get(key, [])}
        assert set(rows) == set(found.upper_limits), key
        if key[0] == "ztf":
            for at, limit in found.upper_limits.items():
                assert same(rows[at]["limiting_mag"], limit), (key, at)


def test_the_forced_photometry_is_the_alerts_forced_photometry(
    db: sqlite3.Connection, raw: dict[Key, RawObject]
) -> None:
    stored = _by_object(db, "SELECT survey, object_id, mjd, band, flux FROM forced_photometry")
    assert sum(o.forced_rows for o in raw.values()) == 1642
    for key, found in raw.items():
        rows = {epoch(row["mjd"], row["band"]): row for row in stored.get(key, [])}
        assert set(rows) == set(found.forced), key
        assert len(found.forced) == found.forced_rows, key  # no two forced points at one time and band
        for at, flux in found.forced.items():
            if key[0] == "rubin":
                assert same(rows[at]["flux"], flux), (key, at)
            else:  # ZTF's are in image counts, stored in nJy: only their absence is compared
                assert (rows[at]["flux"] is None) == (flux is None or flux == FORCED_MISSING), (key, at)
    missing = [f for o in raw.values() for f in o.forced.values() if f == FORCED_MISSING]
    assert len(missing) == 12 + 6  # ZTF17aacymkh's and ZTF17aadcuwj's epochs without a measurement


def test_each_solar_system_source_is_its_own_object(
    db: sqlite3.Connection, raw: dict[Key, RawObject]
) -> None:
    asteroids = {key for key in raw if key[1].startswith("sso-")}
    assert asteroids == {("rubin", "sso-21163633118754629"), ("rubin", "sso-21163624394469969")}
    assert not any(key[1] in ("0", "None", "") for key in raw)
    stored = _by_object(db, "SELECT survey, object_id, detection_id FROM detections")
    for key in asteroids:
        assert {row["detection_id"] for row in stored[key]} == raw[key].alerts  # its own source only
    annotations = _annotations(db)
    for key in asteroids:
        [alert_id] = raw[key].alerts
        assert annotations["rubin", alert_id]["solar-system"]["known"] == 1


def _annotations(db: sqlite3.Connection) -> dict[tuple[str, int], dict[str, Any]]:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in an annotation")

    found: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    for row in db.execute("SELECT survey, alert_id, annotator, payload FROM annotations"):
        found[row["survey"], row["alert_id"]][row["annotator"]] = json.loads(
            row["payload"], parse_constant=refuse
        )
    return dict(found)


def test_every_alert_is_annotated_in_strict_json(db: sqlite3.Connection, raw: dict[Key, RawObject]) -> None:
    annotations = _annotations(db)
    expected = {(key[0], alert_id) for key, found in raw.items() for alert_id in found.alerts}
    assert set(annotations) == expected
    for key, found in annotations.items():
        assert set(ANNOTATORS) <= set(found), key
