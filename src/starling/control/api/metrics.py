"""A runtime's counts as Prometheus metrics, read from the runtime itself at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from starling.core.live import LiveRuntime


class RuntimeCollector(Collector):
    def __init__(self, runtime: LiveRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        w, stage = self.runtime, self.runtime.stage
        messages = CounterMetricFamily("starling_messages_in", "Messages consumed", labels=["stage"])
        messages.add_metric([stage], w.stats.messages_in)
        yield messages
        per_component = CounterMetricFamily(
            "starling_component_alerts",
            "Alerts per component and direction",
            labels=["stage", "component", "direction"],
        )
        for name, counts in w.stats.stages.items():
            per_component.add_metric([stage, name, "in"], counts.alerts_in)
            per_component.add_metric([stage, name, "out"], counts.alerts_out)
            per_component.add_metric([stage, name, "failed"], counts.failed)
        yield per_component
        dead = CounterMetricFamily("starling_dead_letters", "Dead letters written", labels=["stage"])
        dead.add_metric([stage], len(w.dead_letters))
        yield dead
        lag = w.lag()
        if lag is not None:
            gauge = GaugeMetricFamily(
                "starling_consumer_lag", "Messages behind the end of the input", labels=["stage"]
            )
            gauge.add_metric([stage], lag)
            yield gauge
        up = GaugeMetricFamily(
            "starling_uptime_seconds", "Seconds since the worker started", labels=["stage"]
        )
        up.add_metric([stage], time.time() - w.started_at)
        yield up


def runtime_metrics(runtime: LiveRuntime) -> bytes:
    """The Prometheus text exposition of ``runtime``'s counts now."""
    # A registry per scrape: it holds no state of its own, and an app then needs none either.
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(runtime))
    return generate_latest(registry)
