"""The portal's server time on a store of 1,000,000 alerts (``--quick``: 50,000), each figure a ratio
against reading the same rows straight from the database in the same run, on SQLite and PostgreSQL.

1. The object page: the ``/api`` requests ``portal/static/object.js`` makes for one object, in its
   order (the object, its light curve, its alerts (200), the filters it matched, then its newest alert
   with its annotations), their server times summed. The cutout PNGs the page shows are left out: the
   store keeps no cutouts here (they are files beside the tables, not rows).
2. A 10" cone search, ``/api/search/cone``, centred within 3" of a stored object (a user asking for a
   transient's coordinates: the object, and its twin of the other survey when there is one).

Server time is the time the app takes for a request: from the request reaching the ASGI application to
its response's last byte handed back (served in-process; no network). The baseline is the same rows
read with plain SQL on a plain connection that the benchmark keeps open (``sqlite3`` or ``psycopg``):
the same indexes, each row set read once, a cone's exact distance computed in Python (SQLite) or by q3c
(PostgreSQL). Both run for the same objects and cones, in alternating order, after a warm-up pass that
also checks the portal answers with the rows read directly.

The SQL the API runs (``TapResult.sql``, caught as the requests of one page and one cone run) is shown
with its plan (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL, as TAP's reader runs it),
and the benchmark stops if any reads a table whole instead of through an index (``portal_plans``). Beside
the p50 figures: what the ADQL front end alone (parse, check, translate to SQL) costs the same queries.

The store is made once per size and kept (``portal_store``): ``var/bench/portal-v<N>-<alerts>.db`` and
the development PostgreSQL's database ``bench_portal_v<N>_<alerts>``; PostgreSQL's figures are left out,
saying why, when it cannot be started here.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from rich.console import Console

from portal_direct import DirectReads, direct_reads
from portal_plans import check_plans
from portal_store import Sky, fill, make_sky, sample
from starling.adql.sql_backend import to_sql
from starling.web.app import close_web_app, web_app

console = Console(width=130)
Figure = tuple[str, str, str, str]
ROOT = Path(__file__).resolve().parent.parent
STORE_VERSION = 1  # bump when portal_store makes a different store: the kept ones are then made anew
CONE_ARCSEC = 10.0
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Pick = tuple[str, str, float, float]  # survey, object_id, ra, dec


class ServerTimer:
    """An ASGI wrapper that keeps how long the app took for each request: from the call to the last
    body message the app sends (measured before it is handed on)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last = time.perf_counter() - began
            await send(message)

        await self.app(scope, receive, timed)


class Portal:
    """The web app over a store, served in-process, asked as the portal's pages ask it."""

    def __init__(self, location: str, jobs: Path) -> None:
        self.app = web_app(location, jobs)
        self.timer = ServerTimer(self.app)
        # Entered: one event loop and one thread pool for every request, as a running server has.
        self.client = TestClient(self.timer).__enter__()

    def get(self, path: str) -> tuple[Any, float]:
        response = self.client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"portal: {path} answered {response.status_code}: {response.text[:300]}")
        return response.json(), self.timer.last

    def object_page(self, survey: str, object_id: str) -> tuple[dict[str, Any], float]:
        """What the object page reads (object.js, in its order), and the server time of it all."""
        base = f"/api/objects/{survey}/{object_id}"
        found: dict[str, Any] = {}
        total = 0.0
        for name, path in (
            ("object", base),
            ("lightcurve", f"{base}/lightcurve"),
            ("alerts", f"{base}/alerts?limit=200"),
            ("matches", f"{base}/matches"),
        ):
            found[name], took = self.get(path)
            total += took
        newest = found["alerts"]["alerts"][0]["alert_id"]
        found["alert"], took = self.get(f"/api/alerts/{survey}/{newest}")
        return found, total + took

    def cone(self, ra: float, dec: float) -> tuple[dict[str, Any], float]:
        return self.get(f"/api/search/cone?ra={ra!r}&dec={dec!r}&radius_arcsec={CONE_ARCSEC}")

    def queries_of(self, work: Callable[[], object]) -> list[tuple[str, str]]:
        """The queries the API ran while ``work`` ran, in order: (ADQL, the SQL it ran as)."""
        tap = self.app.state.tap_store
        ran: list[tuple[str, str]] = []
        original = tap.run

        def recording(text: str, *args: Any, **kwargs: Any) -> Any:
            result = original(text, *args, **kwargs)
            ran.append((text, result.sql))
            return result

        tap.run = recording
        try:
            work()
        finally:
            del tap.run  # the instance's own attribute: the class's method shows again
        return ran

    def front_end_s(self, queries: list[tuple[str, str]]) -> float:
        """What the ADQL front end costs these queries (checked, then translated to SQL): the least of 5."""
        tap = self.app.state.tap_store
        took = []
        for _ in range(5):
            began = time.perf_counter()
            for adql, _ in queries:
                to_sql(tap.check(adql), tap.backend)
            took.append(time.perf_counter() - began)
        return min(took)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        close_web_app(self.app)


def _cones(picks: list[Pick], seed: int = 5) -> list[tuple[float, float]]:
    """A cone centre within 3" of each picked object."""
    rng = np.random.default_rng(seed)
    centres = []
    for _, _, ra, dec in picks:
        offset, angle = float(rng.uniform(0, 3)) / 3600.0, float(rng.uniform(0, 2 * math.pi))
        shifted_dec = max(-90.0, min(90.0, dec + offset * math.sin(angle)))
        shifted_ra = (ra + offset * math.cos(angle) / max(math.cos(math.radians(dec)), 1e-3)) % 360.0
        centres.append((shifted_ra, shifted_dec))
    return centres


def _check_same(portal_page: dict[str, Any], direct: dict[str, Any], what: str) -> None:
    """The portal shows the rows the direct reads found: stop if not (the figures would compare unlike)."""
    shown = {
        "points": len(portal_page["lightcurve"]["points"]),
        "alerts": portal_page["object"]["n_alerts"],
        "forced": portal_page["object"]["n_forced"],
        "page": len(portal_page["alerts"]["alerts"]),
        "matched": sum(len(f["alerts"]) for f in portal_page["matches"]["filters"]),
        "annotations": len(portal_page["alert"]["annotations"]),
    }
    read = {key: direct[key] for key in shown}
    if shown != read:
        raise SystemExit(f"portal: {what}: the portal shows {shown}, the database holds {read}")


def _warm_up(
    portal: Portal, direct: DirectReads, picks: list[Pick], centres: list[tuple[float, float]]
) -> None:
    """Every page and cone asked once of both, untimed: the caches warm, and the portal's answers checked
    against the rows read directly."""
    cone_rows = 0
    for (survey, object_id, _, _), (ra, dec) in zip(picks, centres, strict=True):
        page, _ = portal.object_page(survey, object_id)
        _check_same(page, direct.object_page(survey, object_id), f"{survey} {object_id}")
        shown = [(o["survey"], o["object_id"]) for o in portal.cone(ra, dec)[0]["objects"]]
        if shown != direct.cone(ra, dec, CONE_ARCSEC):
            raise SystemExit(f"portal: the cone at {ra}, {dec} shows {shown}; the database holds others")
        cone_rows += len(shown)
    console.print(
        f"  {len(picks)} objects and cones checked against the database (warm-up); "
        f"{cone_rows / len(picks):.2f} objects per cone on average"
    )


def _one_round(
    portal: Portal, direct: DirectReads, pick: Pick, centre: tuple[float, float], direct_first: bool
) -> dict[str, float]:
    """One object page and one cone, through the portal and directly."""
    survey, object_id, _, _ = pick
    ra, dec = centre
    turns: list[tuple[str, Callable[[], float]]] = [
        ("page", lambda: portal.object_page(survey, object_id)[1]),
        ("page_direct", lambda: _timed(lambda: direct.object_page(survey, object_id))),
        ("cone", lambda: portal.cone(ra, dec)[1]),
        ("cone_direct", lambda: _timed(lambda: direct.cone(ra, dec, CONE_ARCSEC))),
    ]
    if direct_first:
        turns = [turns[1], turns[0], turns[3], turns[2]]
    return {name: turn() for name, turn in turns}


def _measure(portal: Portal, direct: DirectReads, picks: list[Pick], label: str) -> dict[str, list[float]]:
    """Server times and direct-read times of every object page and cone, the two in alternating order."""
    centres = _cones(picks)
    _warm_up(portal, direct, picks, centres)
    times: dict[str, list[float]] = {"page": [], "page_direct": [], "cone": [], "cone_direct": []}
    began = time.perf_counter()
    for n, (pick, centre) in enumerate(zip(picks, centres, strict=True)):
        for name, took in _one_round(portal, direct, pick, centre, direct_first=n % 2 == 1).items():
            times[name].append(took)
        if (n + 1) % max(1, len(picks) // 4) == 0:
            elapsed = time.perf_counter() - began
            console.print(f"  {label}: {n + 1}/{len(picks)} objects and cones timed ({elapsed:,.0f} s)")
    return times


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def _figures(
    label: str, alerts: int, times: dict[str, list[float]], front_end: dict[str, tuple[int, float]]
) -> list[Figure]:
    """p50 and p95 of each, as ratios; ``front_end``: (queries, seconds of the ADQL front end) of each."""
    figures: list[Figure] = []
    for name, what in (("page", "object page (5 requests)"), ("cone", f'{CONE_ARCSEC:g}" cone search')):
        queries, front_s = front_end[name]
        for q in (50, 95):
            portal = float(np.percentile(times[name], q)) * 1000
            direct = float(np.percentile(times[f"{name}_direct"], q)) * 1000
            figures.append(
                (
                    f"portal {label}: {what} on {alerts:,} alerts, p{q} server time vs direct reads",
                    f"{portal / direct:.0f}x the time",
                    "(info)",
                    f"{portal:.1f} ms vs {direct:.2f} ms"
                    + (f"; ADQL front end {front_s * 1000:.1f} ms ({queries} queries)" if q == 50 else ""),
                )
            )
    return figures


def _run_backend(label: str, location: str, sky: Sky, picks: int) -> list[Figure]:
    fill(location, sky, console, label)
    chosen = sample(sky, picks)
    with tempfile.TemporaryDirectory() as jobs:
        portal = Portal(location, Path(jobs))
        direct = direct_reads(location)
        try:
            survey, object_id, _, _ = chosen[0]
            page = portal.queries_of(lambda: portal.object_page(survey, object_id))
            cone = portal.queries_of(lambda: portal.cone(*_cones(chosen[:1])[0]))
            check_plans(location, list(dict.fromkeys(sql for _, sql in page + cone)), console, label)
            times = _measure(portal, direct, chosen, label)
            # What parsing, checking and translating the ADQL alone costs, of the server time.
            front_end = {
                "page": (len(page), portal.front_end_s(page)),
                "cone": (len(cone), portal.front_end_s(cone)),
            }
        finally:
            direct.close()
            portal.close()
    figures = _figures(label, len(sky.mjd), times, front_end)
    for figure in figures:
        console.print(f"  {figure[0]}: {figure[1]} ({figure[3]})")
    return figures


def _postgres_database(alerts: int) -> str | None:
    """The development PostgreSQL's database for the portal's store (made when missing); None, with why,
    when PostgreSQL cannot be started here."""
    script = ROOT / "scripts" / "postgres"
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        why = started.stderr.strip()[-300:]
        console.print(f"[yellow]portal: no PostgreSQL figures: PostgreSQL would not start:[/] {why}")
        return None
    server = subprocess.run(
        ["bash", str(script), "url"], capture_output=True, text=True, check=True
    ).stdout.strip()
    import psycopg

    name = f"bench_portal_v{STORE_VERSION}_{alerts}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                admin.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        console.print(f"[yellow]portal: no PostgreSQL figures: {server} cannot be reached:[/] {exc}")
        return None
    return f"{server.rpartition('/')[0]}/{name}"


def portal_figures(quick: bool, postgres: bool = True) -> list[Figure]:
    alerts, picks = (50_000, 60) if quick else (1_000_000, 300)
    sky = make_sky(alerts)
    counts = np.diff(sky.start)
    console.print(
        f"portal: {alerts:,} alerts{' (--quick: a small store)' if quick else ''} of {sky.objects:,} objects "
        f"(alerts per object: median {int(np.median(counts))}, p95 {int(np.percentile(counts, 95))}, "
        f"max {int(counts.max())}); {picks} objects and cones timed on each backend"
    )
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    figures = _run_backend("sqlite", str(folder / f"portal-v{STORE_VERSION}-{alerts}.db"), sky, picks)
    location = _postgres_database(alerts) if postgres else None
    if location is not None:
        figures += _run_backend("postgres", location, sky, picks)
    return figures
