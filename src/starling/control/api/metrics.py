"""A runtime's counts as Prometheus metrics, read from the runtime itself at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from starling.core.latency import BUCKETS_S, LatencyHistograms
from starling.core.live import LiveRuntime


class RuntimeCollector(Collector):
    def __init__(self, runtime: LiveRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        w, stage = self.runtime, self.runtime.stage
        messages = CounterMetricFamily("starling_messages_in", "Messages consumed", labels=["stage"])
        messages.add_metric([stage], w.stats.messages_in)
        yield messages
        yield from _component_metrics(w)
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
        yield from _outage_metrics(w)
        up = GaugeMetricFamily(
            "starling_uptime_seconds", "Seconds since the worker started", labels=["stage"]
        )
        up.add_metric([stage], time.time() - w.started_at)
        yield up
        yield from _latency_metrics(w)


def _component_metrics(runtime: LiveRuntime) -> Iterator[Metric]:
    """Per component: alerts in, out and failed, and CPU seconds; and the stage's own CPU seconds."""
    w, stage = runtime, runtime.stage
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
    cpu = CounterMetricFamily(
        "starling_component_cpu_seconds",
        "CPU seconds the stage's thread spent in each component (decode included)",
        labels=["stage", "component"],
    )
    for name, counts in w.stats.stages.items():
        cpu.add_metric([stage, name], counts.cpu_s)
    yield cpu
    batches = CounterMetricFamily(
        "starling_stage_cpu_seconds",
        "CPU seconds of the stage's thread in whole batches",
        labels=["stage"],
    )
    batches.add_metric([stage], w.stats.cpu_s)
    yield batches
    busy = CounterMetricFamily(
        "starling_stage_busy_seconds",
        "Wall seconds the stage spent in whole batches (waits on Kafka included)",
        labels=["stage"],
    )
    busy.add_metric([stage], w.stats.busy_s)
    yield busy
    waits = CounterMetricFamily(
        "starling_stage_wait_seconds",
        "Wall seconds the stage waited on Kafka: for its acknowledgements, and for a batch to be fetched "
        "while messages were waiting",
        labels=["stage", "on"],
    )
    waits.add_metric([stage, "acknowledgements"], w.stats.ack_wait_s)
    waits.add_metric([stage, "fetch"], w.stats.fetch_wait_s)
    yield waits


def _latency_metrics(runtime: LiveRuntime) -> Iterator[Metric]:
    """The spans of the alerts the last stage delivered (``starling.core.latency``)."""
    latency: LatencyHistograms | None = getattr(runtime, "latency", None)
    if latency is None:
        return
    family = HistogramMetricFamily(
        "starling_alert_latency_seconds",
        "Seconds an alert took, by span: from its exposure or its survey's Kafka message to its delivery, "
        "or in one stage",
        labels=["stage", "span"],
    )
    for span, (counts, total) in latency.histograms().items():
        cumulative = list(accumulate(counts))
        buckets = [(repr(bound), count) for bound, count in zip(BUCKETS_S, cumulative, strict=False)]
        family.add_metric([runtime.stage, span], [*buckets, ("+Inf", cumulative[-1])], total)
    yield family


def _outage_metrics(runtime: LiveRuntime) -> Iterator[Metric]:
    stage = runtime.stage
    outage = runtime.backoff.status()
    waiting = GaugeMetricFamily(
        "starling_outage",
        "1 while the stage waits out an outage (store, disk, Kafka, schema registry), else 0",
        labels=["stage"],
    )
    waiting.add_metric([stage], 1 if outage is not None else 0)
    yield waiting
    seconds = GaugeMetricFamily(
        "starling_outage_seconds", "How long the current outage has lasted (0: none)", labels=["stage"]
    )
    seconds.add_metric([stage], outage["for_s"] if outage is not None else 0.0)
    yield seconds
    total = CounterMetricFamily("starling_outages", "Outages the stage has waited out", labels=["stage"])
    total.add_metric([stage], runtime.backoff.outages_total)
    yield total
    absent = CounterMetricFamily(
        "starling_annotation_failures",
        "Alerts that went on without an annotation because its annotator failed on them",
        labels=["stage", "component"],
    )
    per_annotator: dict[str, int] = {}
    for key, count in runtime.stats.annotation_failures.items():
        name = key.split(":", 1)[0]
        per_annotator[name] = per_annotator.get(name, 0) + count
    for name, count in per_annotator.items():
        absent.add_metric([stage, name], count)
    yield absent


def runtime_metrics(runtime: LiveRuntime) -> bytes:
    """The Prometheus text exposition of ``runtime``'s counts now."""
    # A registry per scrape: it holds no state of its own, and an app then needs none either.
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(runtime))
    return generate_latest(registry)
