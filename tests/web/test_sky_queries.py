"""1,000 random cones and polygons over alerts placed where sky geometry goes wrong (both poles, RA 0/360)
and everywhere else: the ids TAP returns on SQLite and on PostgreSQL are those a brute-force numpy search
finds (great-circle distances; polygons with great-circle edges)."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest

from starling.adql import sqlite_functions
from starling.adql.geometry import distance_deg, polygon_contains
from starling.alert.model import Alert
from starling.store.open import open_store
from starling.vo.tap_query import TapStore
from tests.support.helpers import synthetic_alerts

REGIONS = 1000
EDGE = 1e-7  # degrees: points this close to a region's edge are left out of the comparison


@pytest.fixture(scope="module")
def sky() -> list[Alert]:
    """Alerts at the poles, on both sides of RA 0/360, and all over the sky."""
    rng = np.random.default_rng(17)
    base = synthetic_alerts(100, objects=100, seed=5)
    placed = []
    for index in range(3000):
        alert = copy.copy(base[index % len(base)])
        kind = index % 3
        if kind == 0:  # within 6 degrees of a pole
            alert.dec = float(rng.choice([-1, 1]) * rng.uniform(84, 90))
            alert.ra = float(rng.uniform(0, 360))
        elif kind == 1:  # around RA 0/360
            alert.ra = float(rng.uniform(-3, 3) % 360)
            alert.dec = float(rng.uniform(-60, 60))
        else:
            alert.ra = float(rng.uniform(0, 360))
            alert.dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
        alert.alert_id = 10_000_000 + index
        placed.append(alert)
    return placed


def _region(rng: np.random.Generator, index: int) -> tuple[float, float, float]:
    """A centre and a size, a third of them at the poles, a third at RA 0/360."""
    where = index % 3
    if where == 0:
        ra, dec = rng.uniform(0, 360), rng.choice([-1, 1]) * rng.uniform(80, 90)
    elif where == 1:
        ra, dec = rng.uniform(-2, 2) % 360, rng.uniform(-50, 50)
    else:
        ra, dec = rng.uniform(0, 360), rng.uniform(-70, 70)
    size = float(rng.choice([0.001, 0.05, 1.0, 10.0]))
    return float(ra), float(dec), size


def _polygon(ra: float, dec: float, size: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """A convex polygon about (ra, dec): vertices at ``size`` degrees, at increasing angles."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
    vertices = []
    for angle in angles:
        d = np.radians(size)
        lat = np.arcsin(
            np.sin(np.radians(dec)) * np.cos(d) + np.cos(np.radians(dec)) * np.sin(d) * np.cos(angle)
        )
        lon = np.radians(ra) + np.arctan2(
            np.sin(angle) * np.sin(d) * np.cos(np.radians(dec)),
            np.cos(d) - np.sin(np.radians(dec)) * np.sin(lat),
        )
        vertices.append((float(np.degrees(lon) % 360), float(np.degrees(lat))))
    return vertices


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_cones_and_polygons_match_brute_force(
    backend: str, sky: list[Alert], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    location = request.getfixturevalue("postgres_url") if backend == "postgresql" else str(tmp_path / "s.db")
    store = open_store(location)
    try:
        store.write(sky, {})
    finally:
        store.close()
    tap = TapStore(location)
    request.addfinalizer(tap.close)
    ids = np.array([a.alert_id for a in sky])
    ra = np.array([a.ra for a in sky])
    dec = np.array([a.dec for a in sky])
    rng = np.random.default_rng(99)
    compared = 0
    cones: list[str] = []
    polygons: list[str] = []
    for index in range(REGIONS):
        centre_ra, centre_dec, size = _region(rng, index)
        if index % 2 == 0:
            region = f"CIRCLE('ICRS', {centre_ra!r}, {centre_dec!r}, {size!r})"
            separation = distance_deg(ra, dec, centre_ra, centre_dec)
            inside = separation <= size
            certain = np.abs(separation - size) > EDGE
        else:
            size = min(size, 8.0)  # ADQL polygons are smaller than a hemisphere
            vertices = _polygon(centre_ra, centre_dec, size, rng)
            region = "POLYGON('ICRS', " + ", ".join(f"{v[0]!r}, {v[1]!r}" for v in vertices) + ")"
            inside = polygon_contains(ra, dec, [v[0] for v in vertices], [v[1] for v in vertices])
            nudged = [
                polygon_contains(ra + dra, dec + ddec, [v[0] for v in vertices], [v[1] for v in vertices])
                for dra, ddec in ((EDGE, 0), (-EDGE, 0), (0, EDGE), (0, -EDGE))
            ]
            certain = np.all([n == inside for n in nudged], axis=0)
        query = f"SELECT alert_id FROM starling.alerts WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), {region})"
        result = tap.run(query, 100_000)
        found = {int(row[0]) for row in result.all_rows()}
        (cones if index % 2 == 0 else polygons).append(result.sql)
        assert found & set(ids[certain].tolist()) == set(ids[inside & certain].tolist()), query
        compared += int(inside.sum())
    assert compared > 1000  # the regions held alerts: the comparison was not of empty sets
    _every_region_can_use_an_index(location, cones, polygons)


def _every_region_can_use_an_index(location: str, cones: list[str], polygons: list[str]) -> None:
    """The SQL each cone ran reads an index, not the whole table: PostgreSQL's plan with sequential scans
    priced out (on a small table the planner would rightly scan), SQLite's plan as it is; on SQLite each
    polygon too (a band of declinations it spans, before the exact test)."""
    assert len(cones) == len(polygons) == REGIONS // 2
    if location.startswith("postgresql"):
        with psycopg.connect(location) as conn:
            conn.execute("SET enable_seqscan = off")
            for sql in cones:
                plan = "\n".join(str(row[0]) for row in conn.execute(f"EXPLAIN {sql}"))  # type: ignore[arg-type]
                assert "Index" in plan, (sql, plan)
                assert "Seq Scan" not in plan, (sql, plan)
        return
    db = sqlite3.connect(location)
    sqlite_functions.register(db)
    try:
        for sql in [*cones, *polygons]:
            plan = " ".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
    finally:
        db.close()
