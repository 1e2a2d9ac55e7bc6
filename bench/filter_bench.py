"""100 live filters over 10,000 alerts: the vectorized ADQL evaluation vs a plain per-alert Python loop.

The filters are drawn from realistic shapes (brightness and reliability cuts, bands, cones, history,
annotations, rising light curves) with random parameters. Each shape is written twice: as the ADQL a
user submits, and as the Python function a per-alert broker would call. Both run on the same decoded
alerts (histories and annotations already built, so only the judging is timed) and must match the same
alerts; the figures are the ratio of their times and the alert-filter evaluations per second.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

import sql_baselines
from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.components.annotators.history import HistorySummary, HistorySummaryConfig
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig, shared_columns
from starling.core.chain import Chain
from starling.core.component import Batch
from starling.core.deadletter import DeadLetterFile
from starling.core.spec import ComponentSpec
from starling.synthetic.generator import SyntheticConfig, SyntheticNight

PythonFilter = Callable[[Alert], bool]


def _distance_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def _shapes(rng: random.Random) -> list[tuple[str, PythonFilter, str]]:
    """One filter of each shape, with fresh parameters: as ADQL, as a Python function, and as the SQL a
    Lasair-style broker runs over a table of the batch (``{distance}`` is the dialect's haversine)."""
    m = round(rng.uniform(17.0, 20.5), 2)
    r = round(rng.uniform(0.3, 0.9), 2)
    lo = round(rng.uniform(16.0, 19.0), 2)
    hi = round(lo + rng.uniform(0.5, 2.0), 2)
    ra, dec, radius = (
        round(rng.uniform(0, 360), 3),
        round(rng.uniform(-30, 60), 3),
        round(rng.uniform(2, 25), 2),
    )
    n = rng.randint(2, 6)
    days = round(rng.uniform(5, 60), 1)
    snr = round(rng.uniform(5, 30), 1)
    err = round(rng.uniform(0.05, 0.3), 3)
    dm = round(rng.uniform(0.1, 1.0), 2)
    bands = rng.sample(["u", "g", "r", "i", "z", "y"], 2)

    def summary(a: Alert) -> dict[str, Any]:
        return a.annotations["history-summary"]

    return [
        (
            f"mag < {m} AND reliability > {r}",
            lambda a: a.mag is not None and a.mag < m and a.reliability is not None and a.reliability > r,
            f"mag < {m} AND reliability > {r}",
        ),
        (
            f"band IN ('{bands[0]}', '{bands[1]}') AND mag BETWEEN {lo} AND {hi}",
            lambda a: a.band in bands and a.mag is not None and lo <= a.mag <= hi,
            f"band IN ('{bands[0]}', '{bands[1]}') AND mag BETWEEN {lo} AND {hi}",
        ),
        (
            f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))",
            lambda a: _distance_deg(a.ra, a.dec, ra, dec) <= radius,
            f"{{distance:{ra}:{dec}}} <= {radius}",
        ),
        (
            f"ndethist >= {n} AND history_summary.span_days < {days}",
            lambda a: len(a.history.detections) >= n and summary(a)["span_days"] < days,
            f"ndethist >= {n} AND span_days < {days}",
        ),
        (
            f"snr > {snr} AND flux > 0",
            lambda a: (
                a.flux is not None and bool(a.flux_err) and abs(a.flux) / a.flux_err > snr and a.flux > 0
            ),
            f"flux_err > 0 AND ABS(flux) / flux_err > {snr} AND flux > 0",
        ),
        (
            f"DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra}, {dec})) < {radius} OR mag < {lo}",
            lambda a: _distance_deg(a.ra, a.dec, ra, dec) < radius or (a.mag is not None and a.mag < lo),
            f"{{distance:{ra}:{dec}}} < {radius} OR mag < {lo}",
        ),
        (
            f"survey = 'rubin' AND reliability > {r} AND NOT mag_err IS NULL AND mag_err < {err}",
            lambda a: (
                a.survey == "rubin"
                and a.reliability is not None
                and a.reliability > r
                and a.mag_err is not None
                and a.mag_err < err
            ),
            f"survey = 'rubin' AND reliability > {r} AND mag_err IS NOT NULL AND mag_err < {err}",
        ),
        (
            f"history_summary.delta_mag_same_band < -{dm} AND mag < {hi}",
            lambda a: (
                summary(a)["delta_mag_same_band"] is not None
                and summary(a)["delta_mag_same_band"] < -dm
                and a.mag is not None
                and a.mag < hi
            ),
            f"delta_mag_same_band < -{dm} AND mag < {hi}",
        ),
    ]


def make_filters(count: int, seed: int = 5) -> list[tuple[str, PythonFilter, str]]:
    rng = random.Random(seed)
    filters: list[tuple[str, PythonFilter, str]] = []
    while len(filters) < count:
        filters += _shapes(rng)
    return filters[:count]


def filter_specs(count: int) -> list[ComponentSpec]:
    """``count`` of these filters as a pipeline's live ADQL filters (the bench's 100, or its 1,000)."""
    return [
        ComponentSpec(use="adql", name=f"f{i}", config={"expression": expression})
        for i, (expression, _, _) in enumerate(make_filters(count, seed=5 if count <= 100 else 6))
    ]


def decoded_alerts(count: int) -> list[Alert]:
    decoder = AlertDecoder()
    alerts = [
        alert
        for origin, payload in SyntheticNight(SyntheticConfig(alerts=count, cutouts=False, seed=11))
        for alert in decoder.decode(payload, origin)
    ]
    HistorySummary(HistorySummaryConfig(), "history-summary").annotate(alerts)  # builds every history too
    return alerts


def sql_baseline_figures(
    alerts: list[Alert],
    filters: list[tuple[str, PythonFilter, str]],
    starling_s: dict[int, float],
    starling_matches: dict[str, set[int]],
) -> list[tuple[str, str, str, str]]:
    """Starling against the faster of two Lasair-style baselines (each batch loaded into an in-memory
    SQLite or DuckDB, every filter a SELECT over it), at each batch size Starling was timed at."""
    conditions = [sql for _, _, sql in filters]
    contenders = {
        "SQLite": sql_baselines.sqlite_judge(conditions),
        "DuckDB": sql_baselines.duckdb_judge(conditions),
    }
    figures = []
    for batch_size, starling_time in starling_s.items():
        times: dict[str, float] = {}
        for name, judge in contenders.items():
            times[name], matches = _best_of(
                2, lambda j=judge, size=batch_size: sql_baselines.run_batches(j, alerts, len(filters), size)
            )
            matches = sql_baselines.matched_ids(matches)
            if matches != starling_matches:
                differing = [f for f in matches if matches[f] != starling_matches[f]]
                raise RuntimeError(
                    f"{name} disagrees with Starling on {len(differing)} filters: {differing[:3]}"
                )
        faster = min(times, key=times.__getitem__)
        figures.append(
            (
                f"{len(filters)} filters vs the faster Lasair-style SQL baseline, batches of {batch_size:,}",
                f"{times[faster] / starling_time:.1f}x",
                ">= 5x",
                f"Starling {starling_time * 1000:.0f} ms; "
                + ", ".join(f"{name} {t * 1000:.0f} ms" for name, t in times.items())
                + "; load included, same matches",
            )
        )
    return figures


def _matched_ids(batches: list[Batch]) -> dict[str, set[int]]:
    matched: dict[str, set[int]] = {}
    for batch in batches:
        for name, hits in batch.matches.items():
            matched.setdefault(name, set()).update(a.alert_id for a in hits)
    return matched


def _best_of(rounds: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def filter_figures(quick: bool, console: Console) -> list[tuple[str, str, str, str]]:
    alert_count, filter_count = (3_000, 100) if quick else (10_000, 100)
    console.print(
        f"filters: {filter_count} live filters over {alert_count:,} alerts, vectorized vs per-alert loop"
    )
    alerts = decoded_alerts(alert_count)
    filters = make_filters(filter_count)
    components = [
        AdqlFilter(AdqlFilterConfig(expression=expression), f"f{i}")
        for i, (expression, _, _) in enumerate(filters)
    ]

    # Each contender's output is what a stage hands on: every filter's matches, as a sequence of alerts.
    # They are turned into sets of ids for the comparison after the timing.
    def vectorized(batch_size: int, judged: list[AdqlFilter] = components) -> list[Batch]:
        """The filters as a stage runs them: its chain, over batches (counts and CPU kept per filter)."""
        chain = Chain(judged, DeadLetterFile(Path(os.devnull)))
        return [
            chain.run(Batch(alerts[start : start + batch_size]), {})
            for start in range(0, len(alerts), batch_size)
        ]

    def per_alert_loop() -> dict[str, list[Alert]]:
        matched: dict[str, list[Alert]] = {f"f{i}": [] for i in range(len(filters))}
        for alert in alerts:
            for i, (_, judge, _) in enumerate(filters):
                if judge(alert):
                    matched[f"f{i}"].append(alert)
        return matched

    def judging_only() -> float:
        """The plan's evaluation alone, on columns already read (where the rest of the time goes)."""
        total = 0.0
        for start in range(0, len(alerts), 500):
            batch = Batch(alerts[start : start + 500])
            AdqlFilter.cooperate(batch, components)  # reads the columns
            columns = shared_columns(batch)
            columns.memo.clear()
            begin = time.perf_counter()
            AdqlFilter.cooperate(batch, components)
            total += time.perf_counter() - begin
        return total

    rounds = 2 if quick else 3
    loop_s, loop_output = _best_of(rounds, per_alert_loop)
    loop_matches = {name: {a.alert_id for a in hits} for name, hits in loop_output.items()}
    vector_s, vector_output = _best_of(rounds, lambda: vectorized(500))  # the stage's default batch
    vector_matches = _matched_ids(vector_output)
    visit_s, visit_output = _best_of(rounds, lambda: vectorized(alert_count))  # a whole visit at once
    visit_matches = _matched_ids(visit_output)
    judging_s = min(judging_only() for _ in range(rounds))
    if visit_matches != vector_matches:
        raise RuntimeError("the batch size changed the matches")
    if vector_matches != loop_matches:
        differing = [name for name in loop_matches if loop_matches[name] != vector_matches[name]]
        raise RuntimeError(f"the two evaluations disagree on {len(differing)} filters, e.g. {differing[:3]}")
    # A self-service broker at Rubin's scale has thousands of filters: ten times as many, same alerts.
    many = [
        AdqlFilter(AdqlFilterConfig(expression=expression), f"m{i}")
        for i, (expression, _, _) in enumerate(make_filters(10 * filter_count, seed=6))
    ]
    many_s, _ = _best_of(rounds, lambda: vectorized(500, many))
    baselines = sql_baseline_figures(alerts, filters, {500: vector_s, alert_count: visit_s}, vector_matches)
    evaluations = alert_count * filter_count
    total_matches = sum(len(v) for v in vector_matches.values())
    console.print(
        f"  per-alert loop {loop_s:.3f} s, vectorized {vector_s:.3f} s; same {total_matches:,} matches"
    )
    return [
        *baselines,
        (
            f"{filter_count} filters x {alert_count:,} alerts vs per-alert loop",
            f"{loop_s / vector_s:.1f}x",
            ">= 20x",
            f"{vector_s * 1000:.0f} ms vs {loop_s * 1000:.0f} ms; same {total_matches:,} matches",
        ),
        (
            f"the same, judged as one batch of {alert_count:,} (a visit)",
            f"{loop_s / visit_s:.1f}x",
            "(info)",
            f"{visit_s * 1000:.0f} ms",
        ),
        (
            "the judging alone (columns already read) vs loop",
            f"{loop_s / judging_s:.1f}x",
            "(info)",
            f"{judging_s * 1000:.0f} ms: the rest is reading {alert_count:,} Alert objects into columns",
        ),
        (
            f"{10 * filter_count:,} live filters vs {filter_count} (same alerts, batches of 500)",
            f"{many_s / vector_s:.2f}x",
            "<= 2.00x",
            f"{many_s * 1000:.0f} ms vs {vector_s * 1000:.0f} ms",
        ),
        (
            "alert-filter evaluations per second per core",
            f"{evaluations / vector_s / 4e6:.2f}x",
            ">= 1.00x of 4M/s",
            f"{evaluations / vector_s / 1e6:,.1f} M/s in batches of 500 "
            f"(loop: {evaluations / loop_s / 1e6:,.2f} M/s)",
        ),
    ]
