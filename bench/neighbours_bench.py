"""A noisy neighbour in the filter stage: user B's latency and the stage's throughput, with and without
user A running the heaviest legal filters up to the quota.

The filter stage is run as it runs in a worker, batch after batch over the same envelopes (real-sized
cutouts): each envelope decoded, every live ADQL filter of the stage judged together (each under its
time budget), each filter taking its matches, the envelopes written again for the next stage. Quiet:
the operator's filters and user B's. Noisy: the same, plus user A's ``filters_per_user`` filters of the
costliest shapes the language allows within its limits (polygons of many vertices, long chains of
functions, pattern matches), each with its own parameters. The figures are the noisy run's p99 batch
time (what B waits for a match) and throughput, each as a ratio to the quiet run's, measured in turns.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time

from rich.console import Console

from starling.alert.decoder import AlertDecoder
from starling.components.annotators.history import HistorySummary, HistorySummaryConfig
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig
from starling.control.quotas import Quotas
from starling.core.component import Batch
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.envelope import decode_envelope, encode_envelope

BATCH = 500
TARGET = 1.2


def _polygon(rng: random.Random, vertices: int) -> str:
    ra, dec = rng.uniform(0, 360), rng.uniform(-60, 60)
    points = []
    for k in range(vertices):
        angle, radius = 2 * math.pi * k / vertices, rng.uniform(0.5, 3.0)
        points.append(f"{ra + radius * math.cos(angle):.4f}, {dec + radius * math.sin(angle):.4f}")
    return f"POLYGON('ICRS', {', '.join(points)})"


def heavy_filters(count: int, seed: int = 13) -> list[str]:
    """User A's filters: the costliest shapes within the language's limits, each with fresh parameters."""
    rng = random.Random(seed)
    chain = "mag"
    for _ in range(14):  # 28 brackets deep: the limit is 30
        chain = f"SQRT(ABS({chain}) + 1.0)"
    shapes = [
        lambda: f"1 = CONTAINS(POINT('ICRS', ra, dec), {_polygon(rng, 200)})",
        lambda: f"{chain} > {rng.uniform(1.0, 1.1):.4f} AND object_id LIKE '%{rng.choice('abcdef')}%1%2%3%'",
        lambda: " OR ".join(
            f"(mag BETWEEN {m:.2f} AND {m + 0.01:.2f})" for m in [rng.uniform(15, 21) for _ in range(60)]
        ),
    ]
    return [shapes[index % len(shapes)]() for index in range(count)]


def _components(expressions: list[tuple[str, str]]) -> list[AdqlFilter]:
    """Filters as the controller makes them: a user's named ``<owner>.<name>``, owned by that user."""
    built = []
    for name, expression in expressions:
        owner = name.split(".", 1)[0] if "." in name else "operator"
        built.append(AdqlFilter(AdqlFilterConfig(expression=expression, owner=owner), name))
    return built


def envelopes(count: int) -> list[bytes]:
    """What the ingest stage hands the filter stage: annotated alerts in envelopes."""
    decoder = AlertDecoder()
    made = []
    for origin, payload in SyntheticNight(SyntheticConfig(alerts=count, alerts_per_visit=500, seed=11)):
        alerts = decoder.decode(payload, origin)
        HistorySummary(HistorySummaryConfig(), "history-summary").annotate(alerts)
        made.extend(encode_envelope(alert, payload, [], {"ingest": 1}) for alert in alerts)
    return made


def _batch_times(messages: list[bytes], filters: list[AdqlFilter]) -> list[float]:
    """Each batch's filter-stage time, as a worker spends it: envelopes in, judged, envelopes out."""
    decoder, times = AlertDecoder(), []
    for start in range(0, len(messages), BATCH):
        began = time.perf_counter()
        unwrapped = [decode_envelope(m, decoder) for m in messages[start : start + BATCH]]
        batch = Batch([e.alert for e in unwrapped])
        AdqlFilter.cooperate(batch, filters)
        for component in filters:
            component.process(batch)
        matched: dict[int, list[str]] = {}
        for name, alerts in batch.matches.items():
            for alert in alerts:
                matched.setdefault(id(alert), []).append(name)
        for envelope in unwrapped:
            encode_envelope(envelope.alert, envelope.payload, matched.get(id(envelope.alert), []), {})
        times.append(time.perf_counter() - began)
    return times


def neighbour_figures(
    messages: list[bytes], console: Console, rounds: int = 3
) -> list[tuple[str, str, str, str]]:
    quiet = _components(
        [("bright", "mag < 19 AND reliability > 0.5"), ("bob.north", "dec > 30 AND mag < 20")]
    )
    quota = Quotas().filters_per_user
    noisy = quiet + _components([(f"ada.heavy{i}", e) for i, e in enumerate(heavy_filters(quota))])
    for filters in (quiet, noisy):  # the plan is built once per change of filters, not per batch
        _batch_times(messages[:BATCH], filters)
    times: dict[str, list[float]] = {"quiet": [], "noisy": []}
    rate: dict[str, list[float]] = {"quiet": [], "noisy": []}
    for turn in range(rounds):  # interleaved, so drift on a shared machine touches both alike
        console.print(f"neighbours: round {turn + 1}/{rounds}")
        for label, filters in (("quiet", quiet), ("noisy", noisy)):
            gc.collect()  # each run starts with the same garbage to collect: none
            batches = _batch_times(messages, filters)
            times[label].extend(batches)  # pooled over the rounds: a p99 over every batch of both
            rate[label].append(len(messages) / sum(batches))
    p99 = {
        label: statistics.quantiles(found, n=100, method="inclusive")[98] for label, found in times.items()
    }
    latency = p99["noisy"] / p99["quiet"]
    throughput = max(rate["quiet"]) / max(rate["noisy"])
    return [
        (
            f"user B's p99 batch time with user A's {quota} heaviest legal filters",
            f"{latency:.2f}x",
            f"<= {TARGET}x",
            f"{p99['noisy'] * 1000:.1f} ms vs {p99['quiet'] * 1000:.1f} ms",
        ),
        (
            "filter stage throughput, quiet / with user A",
            f"{throughput:.2f}x",
            f"<= {TARGET}x",
            f"{max(rate['noisy']):,.0f} vs {max(rate['quiet']):,.0f} alerts/s",
        ),
    ]
