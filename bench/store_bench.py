"""The distribute stage's store at Rubin's rate, on alerts with real deep-field histories, into a store that
already holds a large history (``--store-rows``, 10^8 detections by default).

The night: Rubin deep-field objects as the real LSSTCam alerts in ``../shared/data/realworld`` have them
(their median count of earlier detections and forced points, their real cutouts), each seen again and
again; every alert carries its object's whole history up to it, as Rubin's do. Each object's first alert
is written before timing starts (the store then knows the object, as it would in a running survey);
the timed alerts are the next ones, each bringing one new detection and one new forced point.

Figures, side by side in one run: alerts/s written by the store sink on SQLite, on PostgreSQL with one
writer and with two writer processes (two replicas of the distribute stage), as a ratio to Rubin's
average rate of 256 alerts/s; the history rows written per alert; and, as the baseline measured in the
same run, the same alerts written the way the store wrote before it knew what it held (every history
row of every alert offered again, ``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``).

The large store is made once and kept (``var/bench/``, and a database of the development PostgreSQL),
by SQL straight into the tables, with periodic counts; the time it took is printed when it is made.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from starling.alert.model import Alert, Detection, ForcedPoint, History
from starling.store.base import AlertStore, WriteCounts
from starling.store.open import open_store
from starling.store.postgres import PostgresStore
from starling.store.rows import StoredHistory
from starling.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
RUBIN_AVERAGE_ALERTS_PER_S = 256.0
BATCH = 250
console = Console(width=130)
Figure = tuple[str, str, str, str]


@dataclass(frozen=True)
class DeepField:
    """What a real LSSTCam deep-field alert carries: earlier detections, forced points, cutouts."""

    detections: int
    forced: int
    cutouts: dict[str, bytes]


def deep_field_profile(samples: Path) -> DeepField:
    from starling.alert.decoder import AlertDecoder

    decoder = AlertDecoder()
    deep = []
    for path in sorted((samples / "realworld" / "rubin").glob("*.avro")):
        payload = path.read_bytes()
        for alert in decoder.decode(payload, path.name):
            if len(alert.history.detections) > 100:
                deep.append(alert)
    if not deep:
        raise SystemExit(f"no deep-field Rubin alert under {samples / 'realworld' / 'rubin'}")
    return DeepField(
        detections=int(statistics.median(len(a.history.detections) for a in deep)),
        forced=int(statistics.median(len(a.history.forced) for a in deep)),
        cutouts={role: c.data for role, c in deep[0].cutouts.items()},
    )


class _ObjectHistory:
    """One deep-field object: its epochs over the year before the night, and one more per new visit."""

    def __init__(
        self, index: int, profile: DeepField, start_mjd: float, visits: int, rng: np.random.Generator
    ):
        self.object_id = f"bench{index}"
        self.ra, self.dec = float(rng.uniform(0, 360)), float(rng.uniform(-70, 10))
        earlier = np.sort(rng.uniform(start_mjd - 365, start_mjd - 1, profile.detections))
        later = start_mjd + np.arange(visits + 1) * 0.5 + rng.uniform(0, 0.01)
        times = np.concatenate([earlier, later])
        bands = rng.choice(list("ugrizy"), len(times))
        fluxes = rng.normal(5000, 800, len(times))
        base = index * 10_000_000
        self.detections = tuple(
            Detection(base + k, float(t), str(b), self.ra, self.dec, None, None, float(f), 150.0)
            for k, (t, b, f) in enumerate(zip(times, bands, fluxes, strict=True))
        )
        forced_times = np.concatenate(
            [np.sort(rng.uniform(start_mjd - 365, start_mjd - 1, profile.forced)), later]
        )
        self.forced = tuple(
            ForcedPoint(float(t), str(b), float(f), 150.0)
            for t, b, f in zip(
                forced_times,
                rng.choice(list("ugrizy"), len(forced_times)),
                rng.normal(3000, 900, len(forced_times)),
                strict=True,
            )
        )
        self.earlier, self.earlier_forced = profile.detections, profile.forced

    def alert(self, visit: int, cutouts: dict[str, bytes]) -> Alert:
        """The alert of new visit ``visit`` (0: the first the store sees)."""
        detections = self.detections[: self.earlier + visit + 1]
        forced = self.forced[: self.earlier_forced + visit + 1]
        trigger = detections[-1]
        history = History(detections, (), forced)
        record = {
            "cutoutScience": cutouts["science"],
            "cutoutTemplate": cutouts["template"],
            "cutoutDifference": cutouts["difference"],
        }
        return Alert(
            survey="rubin",
            alert_id=trigger.detection_id,
            object_id=self.object_id,
            ra=self.ra,
            dec=self.dec,
            mjd=trigger.mjd,
            band=trigger.band,
            mag=None,
            mag_err=None,
            flux=trigger.flux,
            flux_err=trigger.flux_err,
            reliability=0.9,
            schema_version="10.0",
            record=record,
            history_builder=lambda _record, h=history: h,
        )


def night(profile: DeepField, objects: range, visits: int, seed: int) -> tuple[list[Alert], list[Alert]]:
    """(first sight of each object, the timed alerts: ``visits`` more of each, visit after visit)."""
    start_mjd = 61100.0 + seed  # after the prefilled history; a run of its own for every seed
    histories = [
        _ObjectHistory(i, profile, start_mjd, visits, np.random.default_rng(seed * 1_000_003 + i))
        for i in objects
    ]
    first = [h.alert(0, profile.cutouts) for h in histories]
    timed = [h.alert(v, profile.cutouts) for v in range(1, visits + 1) for h in histories]
    return first, timed


def _offer_every_history_row(store: AlertStore) -> None:
    """The store as it wrote before it tracked what it held (in this process only: a forked writer):
    every history row of every alert offered again, even within one batch."""
    StoredHistory.merged = lambda self, other: StoredHistory()  # type: ignore[method-assign]
    if isinstance(store, SQLiteStore):
        store._stored_history = lambda alerts: {}  # type: ignore[method-assign]
    elif isinstance(store, PostgresStore):
        store._stored_history = lambda conn, alerts: {}  # type: ignore[method-assign]


def _write_all(store: AlertStore, alerts: Sequence[Alert]) -> list[WriteCounts]:
    return [store.write(alerts[i : i + BATCH], {}) for i in range(0, len(alerts), BATCH)]


def _writer(
    location: str,
    cutouts: str,
    profile: DeepField,
    objects: range,
    visits: int,
    seed: int,
    naive: bool,
    start: Any,
    results: Any,
) -> None:
    """One replica: its own objects (Kafka keys objects to partitions), its own connection."""
    first, timed = night(profile, objects, visits, seed)
    store = open_store(location, cutouts=Path(cutouts))
    try:
        _write_all(store, first)
        if naive:
            _offer_every_history_row(store)
        start.wait()
        began = time.perf_counter()
        counts = _write_all(store, timed)
        results.put((time.perf_counter() - began, len(timed), sum(c.history_rows for c in counts)))
    finally:
        store.close()


def measure(
    location: str,
    profile: DeepField,
    objects: int,
    visits: int,
    replicas: int,
    seed: int,
    naive: bool = False,
) -> tuple[float, float]:
    """(alerts/s over all writers, history rows written per alert)."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(replicas), context.Queue()
    share = objects // replicas
    cutouts = tempfile.mkdtemp(prefix="starling-bench-cutouts-")
    workers = [
        context.Process(
            target=_writer,
            args=(
                location,
                cutouts,
                profile,
                range(seed * 100_000 + r * share, seed * 100_000 + (r + 1) * share),
                visits,
                seed,
                naive,
                start,
                results,
            ),
        )
        for r in range(replicas)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    shutil.rmtree(cutouts, ignore_errors=True)
    wall = max(seconds for seconds, _, _ in outcomes)
    alerts = sum(n for _, n, _ in outcomes)
    rows = sum(r for _, _, r in outcomes)
    return alerts / wall, rows / alerts


# -- the large store, made once ------------------------------------------------------------------

_PG_PARTITION_ROWS = """
INSERT INTO {table}
SELECT 'rubin', g, 'bg' || (g % 250000), {start} + (g - {low}) * 30.0 / {count}, 'ugrizy'::text,
       (g * 0.000137) % 360, -70 + (g * 0.000071) % 80, NULL, NULL, 4000 + g % 997, 150
FROM generate_series({low}::bigint, {high}::bigint - 1) AS g
"""


def prefill_postgres(server_url: str, rows: int) -> str:
    """A database of the development server holding ``rows`` background detections (made once)."""
    import psycopg

    name = f"bench_store_{rows}"
    base = server_url.rpartition("/")[0]
    url = f"{base}/{name}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f"CREATE DATABASE {name}")
    store = open_store(url)
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        held = conn.execute(
            "SELECT coalesce(sum(reltuples), 0) FROM pg_class WHERE relname LIKE 'detections_p%%'"
        ).fetchone()
        if held and held[0] >= rows * 0.99:
            return url
        console.print(
            f"making the PostgreSQL store of {rows:,} detections (once; kept as database {name}) ..."
        )
        began = time.perf_counter()
        partitions = 12
        per = rows // partitions
        for p in range(partitions):
            start, low = 60720 + 30 * p, p * per
            table = f"detections_p{start}"
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (LIKE detections INCLUDING DEFAULTS)")
            conn.execute(
                _PG_PARTITION_ROWS.format(table=table, start=start, low=low, high=low + per, count=per)
            )
            # Attaching builds the table's indexes (key, by object, q3c) in one sort each: far faster
            # than inserting into indexed tables.
            conn.execute(
                f"ALTER TABLE detections ATTACH PARTITION {table} FOR VALUES FROM ({start}) TO ({start + 30})"
            )
            conn.execute(f"ANALYZE {table}")
            console.print(f"  {(p + 1) * per:,} detections after {time.perf_counter() - began:,.0f} s")
        console.print(f"PostgreSQL store of {rows:,} detections made in {time.perf_counter() - began:,.0f} s")
    return url


def prefill_sqlite(path: Path, rows: int) -> str:
    """A SQLite store holding ``rows`` background detections (made once, kept under var/bench)."""
    import sqlite3

    store = open_store(path)
    held = store.count("detections")
    store.close()
    if held >= rows:
        return str(path)
    console.print(f"making the SQLite store of {rows:,} detections (once; kept at {path}) ...")
    began = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA cache_size = -1000000")
    db.execute("DROP INDEX IF EXISTS detections_by_object")  # rebuilt once at the end: one sort
    step = 5_000_000
    for low in range(held, rows, step):
        high = min(rows, low + step)
        db.execute("BEGIN")
        db.execute(
            "WITH RECURSIVE g(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
            "INSERT INTO detections SELECT 'rubin', x, 'bg' || (x % 250000), 60720 + x * 360.0 / ?, 'r', "
            "(x * 0.000137) % 360, -70 + (x * 0.000071) % 80, NULL, NULL, 4000 + x % 997, 150 FROM g",
            (low, high - 1, rows),
        )
        db.execute("COMMIT")
        console.print(f"  {high:,} detections after {time.perf_counter() - began:,.0f} s")
    db.execute("CREATE INDEX IF NOT EXISTS detections_by_object ON detections (survey, object_id, mjd)")
    db.close()
    console.print(f"SQLite store of {rows:,} detections made in {time.perf_counter() - began:,.0f} s")
    return str(path)


def postgres_server() -> str:
    started = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres"), "start"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        raise SystemExit(f"PostgreSQL would not start: {started.stderr}")
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres"), "url"], capture_output=True, text=True, check=True
    ).stdout.strip()


def store_figures(samples: Path, quick: bool, store_rows: int) -> list[Figure]:
    profile = deep_field_profile(samples)
    objects, visits = (40, 3) if quick else (200, 6)
    cutout_kb = sum(len(d) for d in profile.cutouts.values()) // 1024
    console.print(
        f"store: deep-field alerts with {profile.detections} earlier detections and {profile.forced} forced "
        f"points (the real LSSTCam alerts' medians), {cutout_kb} kB "
        f"of cutouts; {objects} objects x {visits} timed visits, batches of {BATCH}"
    )
    rows = 1_000_000 if quick else store_rows
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    sqlite = prefill_sqlite(folder / f"store-{rows}.db", rows)
    postgres = prefill_postgres(postgres_server(), rows)
    seed = int(time.time()) % 10_000  # new objects and a later night every run: the store keeps growing
    runs = [
        ("SQLite", sqlite, 1, False),
        ("SQLite, every history row offered", sqlite, 1, True),
        ("PostgreSQL, 1 writer", postgres, 1, False),
        ("PostgreSQL, 2 writers", postgres, 2, False),
        ("PostgreSQL, every history row offered", postgres, 1, True),
    ]
    results: dict[str, tuple[float, float]] = {}
    for offset, (label, location, replicas, naive) in enumerate(runs):
        results[label] = measure(location, profile, objects, visits, replicas, seed * 10 + offset, naive)
        rate, per_alert = results[label]
        console.print(f"  {label}: {rate:,.0f} alerts/s, {per_alert:,.1f} history rows written per alert")
    figures: list[Figure] = []
    for label, (rate, per_alert) in results.items():
        figures.append(
            (
                f"store: {label}, into {rows:,} detections held (vs Rubin's 256 alerts/s)",
                f"{rate / RUBIN_AVERAGE_ALERTS_PER_S:.2f}x",
                "(the old way)" if "offered" in label else ">= 1.0x",
                f"{rate:,.0f} alerts/s, {per_alert:,.1f} history rows/alert",
            )
        )
    for backend in ("SQLite", "PostgreSQL"):
        tracked = results[backend if backend == "SQLite" else "PostgreSQL, 1 writer"][0]
        offered = results[f"{backend}, every history row offered"][0]
        figures.append(
            (
                f"store: {backend}, tracking what is held vs offering every history row",
                f"{tracked / offered:.2f}x",
                ">= 1.0x",
                f"{tracked:,.0f} vs {offered:,.0f} alerts/s",
            )
        )
    return figures
