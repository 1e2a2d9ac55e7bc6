"""Cone lookups against a 1-million-row catalogue: Starling's HEALPix index vs astropy's
``search_around_sky`` on the same data, in the same run, with the same matches checked.

Both are warmed first (astropy builds and caches its KD-tree on the catalogue; the index is built
once, as ``starling catalog add`` does, and opened memory-mapped), so the figure is the lookups.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky
from rich.console import Console

from starling.components.annotators.catalog_index import CatalogIndex


def _sky(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, count), np.degrees(np.arcsin(rng.uniform(-1, 1, count)))


def crossmatch_figures(quick: bool, console: Console) -> list[tuple[str, str, str, str]]:
    rows, lookups, radius = (200_000, 20_000, 2.0) if quick else (1_000_000, 100_000, 2.0)
    console.print(f"crossmatch: {lookups:,} cone lookups of {radius} arcsec against {rows:,} rows")
    rng = np.random.default_rng(8)
    cat_ra, cat_dec = _sky(rng, rows)
    # Half the lookups fall next to catalogue rows (so there are matches), half anywhere.
    half = lookups // 2
    picks = rng.integers(0, rows, half)
    jitter = rng.normal(0, radius / 3600 / 2, (2, half))
    q_ra = np.concatenate(
        [(cat_ra[picks] + jitter[0] / np.cos(np.radians(cat_dec[picks]))) % 360, _sky(rng, half)[0]]
    )
    q_dec = np.concatenate([np.clip(cat_dec[picks] + jitter[1], -90, 90), _sky(rng, half)[1]])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        CatalogIndex.build(
            Path(folder) / "bench", "bench", cat_ra, cat_dec, np.arange(rows), max_radius_arcsec=5.0
        )
        built_s = time.perf_counter() - started
        index = CatalogIndex(Path(folder) / "bench")
        catalogue, queries = SkyCoord(cat_ra * u.deg, cat_dec * u.deg), SkyCoord(q_ra * u.deg, q_dec * u.deg)
        search_around_sky(queries[:10], catalogue, radius * u.arcsec)  # astropy builds and caches its tree
        index.search(q_ra[:10], q_dec[:10], radius)

        def ours() -> set[tuple[int, int]]:
            found = index.search(q_ra, q_dec, radius)
            return set(
                zip(found.pairs[0].tolist(), np.asarray(index.ids)[found.pairs[1]].tolist(), strict=True)
            )

        def theirs() -> set[tuple[int, int]]:
            qi, ci, _, _ = search_around_sky(queries, catalogue, radius * u.arcsec)
            return set(zip(qi.tolist(), ci.tolist(), strict=True))

        best = {"index": math.inf, "astropy": math.inf}
        results = {}
        for _ in range(3):  # interleaved rounds, best of each
            for name, run in (("astropy", theirs), ("index", ours)):
                begin = time.perf_counter()
                results[name] = run()
                best[name] = min(best[name], time.perf_counter() - begin)
        if results["index"] != results["astropy"]:
            raise RuntimeError("the index and astropy disagree on the matches")
    per_second = lookups / best["index"]
    console.print(
        f"  index {best['index'] * 1000:.0f} ms, astropy {best['astropy'] * 1000:.0f} ms, "
        f"same {len(results['index']):,} pairs; index built in {built_s:.1f} s"
    )
    return [
        (
            f"cone lookups vs astropy search_around_sky ({rows:,} rows)",
            f"{best['astropy'] / best['index']:.2f}x",
            ">= 1.00x",
            f"{best['index'] * 1000:.0f} ms vs {best['astropy'] * 1000:.0f} ms for {lookups:,}; "
            f"same {len(results['index']):,} pairs",
        ),
        (
            "cone lookups per second per core",
            f"{per_second / 100_000:.2f}x",
            ">= 1.00x of 100k/s",
            f"{per_second:,.0f}/s (index of {rows:,} rows built in {built_s:.1f} s)",
        ),
    ]


def feature_figures(quick: bool, console: Console) -> list[tuple[str, str, str, str]]:
    """Light-curve features for a batch at once vs the same code alert by alert."""
    from filter_bench import decoded_alerts
    from starling.components.annotators.lightcurve import batch_features

    count = 3_000 if quick else 10_000
    alerts = decoded_alerts(count)
    points = [len(a.history.detections) for a in alerts]
    console.print(
        f"features: {count:,} alerts, {np.median(points):.0f} detections each (median, max {max(points)})"
    )
    best = {"batch": math.inf, "alone": math.inf}
    for _ in range(3):
        begin = time.perf_counter()
        together = [f for start in range(0, count, 500) for f in batch_features(alerts[start : start + 500])]
        best["batch"] = min(best["batch"], time.perf_counter() - begin)
        begin = time.perf_counter()
        alone = [batch_features([alert])[0] for alert in alerts]
        best["alone"] = min(best["alone"], time.perf_counter() - begin)
    if together != alone:
        raise RuntimeError("the batch and the alert-by-alert features differ")
    return [
        (
            "light-curve features, batches of 500 vs alert by alert",
            f"{best['alone'] / best['batch']:.1f}x",
            "(info)",
            f"{count / best['batch']:,.0f} alerts/s ({sum(points) / best['batch']:,.0f} detections/s) "
            f"vs {count / best['alone']:,.0f}/s",
        )
    ]
