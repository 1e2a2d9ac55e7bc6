"""Where an alert's time goes: from its exposure, through each stage, to its delivery.

Every envelope carries the wall time (Unix seconds) at which each stage was done with it, in the order
the stages came, after the time the survey put its message on Kafka (``survey``: the message's Kafka
timestamp). The last stage, having delivered an alert, records its spans in histograms:

- ``exposure``: from the exposure to the delivery. The exposure's time is the alert's ``mjd``: ZTF's
  ``jd`` (UTC), Rubin's ``midpointMjdTai`` (TAI, 37 s ahead of UTC since 2017: taken off). It is the
  midpoint, not the readout, so the span is a little longer than Rubin's "60 s after readout" counts;
- ``survey``: from the survey's message on Kafka to the delivery (Starling's own share);
- one per stage: from the time before it (the survey's, or the stage before) to the time it was done.

The histograms are exported as Prometheus histograms (``starling_alert_latency_seconds``) and summed up in
``/status`` (count, median, 99th percentile, share within 60 s, from the buckets).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from starling.alert.model import Alert

SURVEY = "survey"
EXPOSURE = "exposure"
BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
TAI_MINUS_UTC_S = 37.0
_UNIX_EPOCH_MJD = 40587.0
PROMISE_S = 60.0  # Rubin's: 98% of alerts out within 60 s


def exposure_time(alert: Alert) -> float:
    """The exposure's time of an alert, in Unix seconds (UTC)."""
    unix = (alert.mjd - _UNIX_EPOCH_MJD) * 86400.0
    return unix - TAI_MINUS_UTC_S if alert.survey == "rubin" else unix


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket that holds the ``q`` quantile (None past the last bound)."""
        wanted, seen = q * self.count, 0
        for bound, count in zip(BUCKETS_S, self.counts, strict=False):
            seen += count
            if seen >= wanted:
                return bound
        return None

    def within(self, seconds: float) -> float:
        """The share of observations at or under ``seconds`` (a bucket bound)."""
        index = BUCKETS_S.index(seconds)
        return sum(self.counts[: index + 1]) / self.count if self.count else 0.0


class LatencyHistograms:
    """The spans of the alerts a stage delivered, per span name."""

    def __init__(self) -> None:
        self._spans: dict[str, _Histogram] = {}
        self._lock = threading.Lock()

    def delivered(
        self, stage: str, alerts: Iterable[Alert], times: Mapping[int, Mapping[str, float]], done: float
    ) -> None:
        """The last stage (``stage``) delivered ``alerts`` at ``done``: record each one's spans from the
        stages' times it carries (``times`` by ``id(alert)``: its envelope's)."""
        with self._lock:
            for alert in alerts:
                self._span(EXPOSURE).observe(max(0.0, done - exposure_time(alert)))
                stamps = [*(times.get(id(alert)) or {}).items(), (stage, done)]
                if stamps[0][0] != SURVEY:
                    continue  # not from a survey's Kafka topic (a replayed file): no start to count from
                self._span(SURVEY).observe(max(0.0, done - stamps[0][1]))
                for (_, previous), (name, at) in pairwise(stamps):
                    self._span(name).observe(max(0.0, at - previous))

    def _span(self, name: str) -> _Histogram:
        return self._spans.setdefault(name, _Histogram())

    def histograms(self) -> dict[str, tuple[list[int], float]]:
        """Per span: the counts per bucket (the last past every bound) and the sum of seconds."""
        with self._lock:
            return {name: (list(h.counts), h.total) for name, h in self._spans.items()}

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                name: {
                    "count": h.count,
                    "p50_s": h.quantile(0.5),
                    "p99_s": h.quantile(0.99),
                    "within_60s": round(h.within(PROMISE_S), 4),
                }
                for name, h in self._spans.items()
            }
