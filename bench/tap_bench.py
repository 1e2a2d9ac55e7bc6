"""TAP over a large store: the three queries astronomers run most, each as a ratio against a baseline run
in the same process on the same store.

1. A 5" cone on a store of 1,000,000 objects: p50 and p95 of the query as TAP runs it (q3c's index on
   PostgreSQL; a declination band, then the exact test, on SQLite) against the same cone found by a full
   scan (the distance of every object computed).
2. An upload crossmatch of 1,000 positions at 1.5" (``TAP_UPLOAD`` joined to the objects by CONTAINS)
   against the same 1,000 positions asked for one cone at a time.
3. A count of the alerts in a 1-day time window on a store of 10,000,000 alerts (the time index)
   against a count by full scan.
4. Queries under stream load: the store's writes at Rubin's average rate (a batch of 256 real-sized
   deep-field alerts a second, as the distribute stage writes them) while a TAP client queries
   without pause (cones, window counts), against the same writes alone.

The large stores are made once (SQL straight into the tables) and kept: ``var/bench/tap-<objects>.db``
and the development PostgreSQL's database ``bench_tap_<objects>``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from starling.store.open import open_store
from starling.vo.tap_query import TapStore
from starling.vo.tap_upload import Upload

console = Console(width=130)
Figure = tuple[str, str, str, str]
ROOT = Path(__file__).resolve().parent.parent
START_MJD = 60000.0
NIGHTS = 1000  # the alerts spread over this many days


def _recursive(low: int, high: int) -> str:
    """SQLite's series of whole numbers, low to high - 1."""
    return (
        f"(WITH RECURSIVE g(x) AS (SELECT {low} UNION ALL SELECT x + 1 FROM g WHERE x < {high - 1}) "
        "SELECT x FROM g)"
    )


def _objects_sql(objects: int, backend: str) -> str:
    series = f"generate_series(0, {objects - 1}) AS g(x)" if backend == "postgres" else _recursive(0, objects)
    # Positions spread over the sphere (a golden-angle spiral: deterministic, even in area).
    return (
        "INSERT INTO objects (survey, object_id, ra, dec, first_mjd, last_mjd, last_alert_id, last_band, "
        "last_mag, last_flux, n_detections, n_upper_limits) "
        f"SELECT 'rubin', 'o' || x, ((x * 137.50776405) - 360.0 * FLOOR(x * 137.50776405 / 360.0)), "
        f"DEGREES(ASIN(1.0 - 2.0 * (x + 0.5) / {objects})), {START_MJD}, {START_MJD + NIGHTS}, x, 'r', 20.0, "
        f"1000.0, 10, 0 FROM {series}"
    )


def _alerts_sql(alerts: int, objects: int, low: int, high: int, backend: str) -> str:
    series = f"generate_series({low}, {high - 1}) AS g(x)" if backend == "postgres" else _recursive(low, high)
    return (
        "INSERT INTO alerts (survey, alert_id, object_id, mjd, ra, dec, band, mag, mag_err, flux, flux_err, "
        "reliability, schema_version) "
        f"SELECT 'rubin', x, 'o' || (x % {objects}), {START_MJD} + x * {float(NIGHTS)} / {alerts}, "
        f"((x % {objects}) * 137.50776405) - 360.0 * FLOOR((x % {objects}) * 137.50776405 / 360.0), "
        f"DEGREES(ASIN(1.0 - 2.0 * ((x % {objects}) + 0.5) / {objects})), 'r', 20.0, 0.1, 1000.0, 90.0, "
        f"0.9, '10.0' FROM {series}"
    )


def _make(location: str, objects: int, alerts: int, backend: str) -> None:
    store = open_store(location)
    try:
        if store.count("objects") >= objects and store.count("alerts") >= alerts:
            return
    finally:
        store.close()
    console.print(f"tap: making a {backend} store of {objects:,} objects and {alerts:,} alerts (once) ...")
    began = time.perf_counter()
    if backend == "postgres":
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            for start in range(0, NIGHTS, 30):  # the partitions the alerts need, as the writer makes them
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS alerts_p{int(START_MJD) + start} PARTITION OF alerts "
                    f"FOR VALUES FROM ({int(START_MJD) + start}) TO ({int(START_MJD) + start + 30})"
                )
            conn.execute(_objects_sql(objects, backend))  # type: ignore[arg-type]
            step = 1_000_000
            for low in range(0, alerts, step):
                conn.execute(_alerts_sql(alerts, objects, low, min(alerts, low + step), backend))  # type: ignore[arg-type]
                console.print(
                    f"  {min(alerts, low + step):,} alerts after {time.perf_counter() - began:,.0f} s"
                )
            conn.execute("ANALYZE objects")
            conn.execute("ANALYZE alerts")
    else:
        import sqlite3

        db = sqlite3.connect(location, isolation_level=None)
        db.execute("PRAGMA cache_size = -1000000")
        db.execute("BEGIN")
        db.execute(_objects_sql(objects, backend))
        db.execute("COMMIT")
        step = 1_000_000
        for low in range(0, alerts, step):
            db.execute("BEGIN")
            db.execute(_alerts_sql(alerts, objects, low, min(alerts, low + step), backend))
            db.execute("COMMIT")
            console.print(f"  {min(alerts, low + step):,} alerts after {time.perf_counter() - began:,.0f} s")
        db.execute("ANALYZE")
        db.close()
    console.print(f"tap: {backend} store made in {time.perf_counter() - began:,.0f} s")


def _times(work: Callable[[], object], repeats: int) -> list[float]:
    found = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        found.append(time.perf_counter() - began)
    return found


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _figures(label: str, tap: TapStore, objects: int, repeats: int) -> list[Figure]:
    rng = np.random.default_rng(3)
    radius = 5.0 / 3600
    centres = [
        (float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))) for _ in range(repeats)
    ]
    cone = (
        "SELECT object_id FROM starling.objects "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {}, {}, {}))"
    )
    scan = (
        "SELECT object_id FROM starling.objects "
        "WHERE DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {}, {})) <= {}"
    )
    indexed = [
        _times(lambda c=c: tap.run(cone.format(c[0], c[1], radius), 1000).all_rows(), 1)[0] for c in centres
    ]
    scans = [
        _times(lambda c=c: tap.run(scan.format(c[0], c[1], radius), 1000).all_rows(), 1)[0]
        for c in centres[: max(3, repeats // 10)]
    ]
    figures: list[Figure] = [
        (
            f'tap {label}: 5" cone on {objects:,} objects, p50 vs a full scan',
            f"{statistics.median(scans) / statistics.median(indexed):,.0f}x faster",
            "faster",
            f"p50 {statistics.median(indexed) * 1000:.1f} ms, p95 {_p(indexed, 95) * 1000:.1f} ms; "
            f"scan {statistics.median(scans) * 1000:,.0f} ms",
        )
    ]
    # The crossmatch: 1,000 positions next to real objects, at 1.5".
    picks = rng.integers(0, objects, 1000)
    golden = (picks * 137.50776405) % 360.0
    decs = np.degrees(np.arcsin(1.0 - 2.0 * (picks + 0.5) / objects))
    upload = Upload(
        "targets",
        (("id", "long"), ("ra", "double"), ("dec", "double")),
        [(int(i), float(r) + 1e-4, float(d)) for i, r, d in zip(range(1000), golden, decs, strict=True)],
    )
    join = (
        "SELECT u.id, o.object_id FROM TAP_UPLOAD.targets AS u JOIN starling.objects AS o "
        "ON 1 = CONTAINS(POINT('ICRS', o.ra, o.dec), CIRCLE('ICRS', u.ra, u.dec, 1.5 / 3600))"
    )
    began = time.perf_counter()
    matched = tap.run(join, 100_000, uploads=[upload]).all_rows()
    crossmatch_s = time.perf_counter() - began
    one_by_one = (
        _times(
            lambda: [
                tap.run(cone.format(r + 1e-4, d, 1.5 / 3600), 10).all_rows()
                for r, d in zip(golden[:100], decs[:100], strict=True)
            ],
            1,
        )[0]
        * 10
    )
    figures.append(
        (
            f'tap {label}: upload crossmatch of 1,000 positions at 1.5" vs 1,000 cones one by one',
            f"{one_by_one / crossmatch_s:.1f}x faster",
            "faster",
            f"{crossmatch_s:.2f} s ({len(matched)} pairs); cones {one_by_one:.1f} s (100 timed, x10)",
        )
    )
    return figures


def _window_figure(label: str, tap: TapStore, alerts: int) -> Figure:
    window = "SELECT COUNT(*) FROM starling.alerts WHERE mjd BETWEEN {} AND {}"
    full = "SELECT COUNT(*) FROM starling.alerts WHERE mjd + 0 BETWEEN {} AND {}"  # no index: a scan
    day = START_MJD + 500
    indexed = _times(lambda: tap.run(window.format(day, day + 1), 10).all_rows(), 5)
    scanned = _times(lambda: tap.run(full.format(day, day + 1), 10).all_rows(), 2)
    return (
        f"tap {label}: 1-day window count on {alerts:,} alerts vs a full scan",
        f"{statistics.median(scanned) / statistics.median(indexed):,.0f}x faster",
        "faster",
        f"{statistics.median(indexed) * 1000:.1f} ms vs {statistics.median(scanned) * 1000:,.0f} ms",
    )


def tap_figures(quick: bool, postgres_server: str, samples: Path) -> list[Figure]:
    objects, alerts = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    import psycopg

    name = f"bench_tap_{objects}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    locations = {
        "sqlite": str(folder / f"tap-{objects}.db"),
        "postgres": f"{postgres_server.rpartition('/')[0]}/{name}",
    }
    figures: list[Figure] = []
    for backend, location in locations.items():
        _make(location, objects, alerts, backend)
        tap = TapStore(location, timeout_s=600)
        try:
            figures += _figures(backend, tap, objects, 20 if quick else 100)
            figures.append(_window_figure(backend, tap, alerts))
        finally:
            tap.close()
        for pace in (None, QUERY_PAIRS_PER_S):
            figures.append(load_figure(location, backend, objects, samples, 15 if quick else 60, pace))
        for figure in figures[-5:]:
            console.print(f"  {figure[0]}: {figure[1]} ({figure[3]})")
    return figures


# A busy portal's queries: a cone and a 1-day count, this many times a second (20 queries/s in all).
QUERY_PAIRS_PER_S = 10.0


def _query_workload(location: str, objects: int, stop: Any, pace: float | None) -> None:
    """A TAP client asking a cone and a window count, again and again until told to stop: one pair after
    another (``pace`` None: as fast as it can, the worst case), or ``pace`` pairs a second."""
    tap = TapStore(location, timeout_s=60)
    rng = np.random.default_rng(11)
    began, pairs = time.perf_counter(), 0
    try:
        while not stop.is_set():
            if pace is not None:
                stop.wait(max(0.0, began + pairs / pace - time.perf_counter()))
                pairs += 1
            ra, dec = float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
            tap.run(
                "SELECT object_id FROM starling.objects WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                f"CIRCLE('ICRS', {ra}, {dec}, {5.0 / 3600}))",
                1000,
            ).all_rows()
            day = START_MJD + float(rng.uniform(0, NIGHTS - 1))
            tap.run(
                f"SELECT COUNT(*) FROM starling.alerts WHERE mjd BETWEEN {day} AND {day + 1}", 10
            ).all_rows()
    finally:
        tap.close()


def _paced_writes(location: str, samples: Path, seconds: int, seed: int) -> list[float]:
    """The distribute stage's store at Rubin's average rate: a batch of 256 deep-field alerts a second;
    how long each write took."""
    from store_bench import deep_field_profile, night

    profile = deep_field_profile(samples)
    first, timed = night(profile, range(seed * 1000, seed * 1000 + 256), seconds, seed)
    store = open_store(location)
    try:
        store.write(first, {})
        durations = []
        for batch in range(seconds):
            tick = time.perf_counter()
            store.write(timed[batch * 256 : (batch + 1) * 256], {})
            durations.append(time.perf_counter() - tick)
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
        return durations
    finally:
        store.close()


def load_figure(
    location: str, label: str, objects: int, samples: Path, seconds: int, pace: float | None
) -> Figure:
    """The writes' time with a TAP client querying all along, against the same writes alone: in
    alternating windows (alone, loaded, alone, loaded ...), so that the machine's drift falls on both."""
    import multiprocessing

    seed = int(time.time()) % 1000
    context = multiprocessing.get_context("fork")
    quiet: list[float] = []
    loaded: list[float] = []
    rounds = 3
    for turn in range(rounds):
        quiet += _paced_writes(location, samples, seconds // rounds, seed + 2 * turn)
        stop = context.Event()
        client = context.Process(target=_query_workload, args=(location, objects, stop, pace))
        client.start()
        try:
            loaded += _paced_writes(location, samples, seconds // rounds, seed + 2 * turn + 1)
        finally:
            stop.set()
            client.join(timeout=120)
    ratio = statistics.mean(loaded) / statistics.mean(quiet)
    asking = "as fast as it can" if pace is None else f"{2 * pace:g} queries/s"
    return (
        f"tap {label}: the store's writes at 256 alerts/s with a TAP client querying ({asking}) vs alone",
        f"{ratio:.2f}x the time",
        "< 1.10x",
        f"{statistics.mean(loaded) * 1000:.0f} vs {statistics.mean(quiet) * 1000:.0f} ms per second's batch",
    )
