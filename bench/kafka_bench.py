"""The Kafka figures of ``bench/run.py``: each measured against a baseline in the same run.

1. ingest throughput over Kafka (consume, decode, envelope, produce, commit) vs plain fastavro;
2. end-to-end latency, produce to the output topic, p50/p99 at 250 alerts/s (target p99 < 1 s);
3. Rubin-sized visits of 10,000 (target < 15 s) and 40,000 alerts (Rubin's peak: target < 39 s, the next
   visit; run last, as the heaviest on the broker's disk) through the whole chain, with the cores the
   machine used meanwhile, vs plain decoding; the visit's messages are made before the clock starts, as a
   survey's are;
4. the ingest stage with two replicas vs one, on a topic filled in advance (target: faster);
5. catch-up: a backlog of realistic alerts (a deep night: the real deep fields' history lengths) waiting on
   Kafka, drained by the chain started after it, as a multiple of Rubin's average rate (256 alerts/s).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from rich.console import Console

from kafka_replicas import machine_cpu_s, replica_figures, with_filters
from starling.assembly import default_pipeline
from starling.control.backends.processes import LocalChain
from starling.core.chain import RunStats
from starling.core.collector import stage_collector
from starling.core.component import RawMessage
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.transport.kafka.clients import delete_topics
from starling.transport.kafka.feed import feed, source_messages
from starling.transport.kafka.worker import StageWorker

RUBIN_AVERAGE_RATE = 10_000 / 39  # alerts/s: a visit of 10,000 every 39 s
# A visit's alerts all delivered within: 15 s for an average visit; for Rubin's peak, before the next visit.
VISIT_TARGET_S = {10_000: 15.0, 40_000: 39.0}


def _spec(bootstrap: str, alerts: int, annotators: bool = True, history: str = "short") -> PipelineSpec:
    night = {"alerts": alerts, "seed": 2026, "history": history}
    base = default_pipeline(ComponentSpec(use="synthetic", config=night))
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
    spec = base.with_kind("annotators", base.annotators if annotators else [])
    return spec.with_kind("sinks", [ComponentSpec(use="store")]).model_copy(update={"kafka": kafka})


def ingest_rate(bootstrap: str, alerts: int) -> tuple[float, str]:
    """Alerts/s through one in-process ingest worker, from a topic filled in advance, and where its time
    went (its batches' own work, its waits on Kafka within them and for fetches, the rest)."""
    spec = _spec(bootstrap, alerts, annotators=False)
    feed(spec)
    with tempfile.TemporaryDirectory() as out:
        worker = StageWorker(spec, "ingest", Path(out))
        first_batch: list[tuple[float, int]] = []
        finished: list[float] = []

        at_first: list[RunStats] = []

        def on_batch(w: StageWorker) -> None:
            if not first_batch:
                first_batch.append((time.perf_counter(), w.stats.messages_in))
                at_first.append(w.stats.snapshot())
            if w.stats.messages_in >= alerts and not finished:
                finished.append(time.perf_counter())
                w.stop()

        thread = threading.Thread(target=worker.run, kwargs={"on_batch": on_batch})
        with stage_collector():  # as in a worker's own process (`starling serve` sets it)
            thread.start()
            thread.join(timeout=600)
        if not finished:
            raise RuntimeError("the ingest worker did not take every message")
        # Counted from the end of the first batch: joining the consumer group is a one-off cost.
        (t0, done0), t1 = first_batch[0], finished[0]
        stats, first, whole = worker.stats, at_first[0], t1 - t0
        busy, acks = stats.busy_s - first.busy_s, stats.ack_wait_s - first.ack_wait_s
        fetches = stats.fetch_wait_s - first.fetch_wait_s
        where = (
            f"of {whole:.1f} s: its batches' work {busy - acks:.1f} s, waiting for acknowledgements "
            f"{acks:.1f} s, for fetches {fetches:.1f} s, the rest {whole - busy - fetches:.1f} s"
        )
        return (alerts - done0) / whole, where


def _made_beforehand(spec: PipelineSpec) -> list[RawMessage]:
    """The spec's source messages, made before a figure's clock starts (a survey's alerts arrive made)."""
    return list(source_messages(spec))


def _timestamps(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < expected and time.monotonic() < deadline:
        messages.extend(m for m in consumer.consume(500, 1.0) if m.error() is None)
    consumer.close()
    return messages


def latency_ms(
    bootstrap: str, rate: float, seconds: float, console: Console
) -> tuple[float, float, int, dict[str, tuple[float, float]]]:
    """p50 and p99 of (output-topic timestamp - raw-topic timestamp) for a stream fed at ``rate``, and
    where the time goes: p50 and p99 (ms) of each stage's span, from the envelopes' stage times (ingest,
    filter) and the distribute stage's histograms (delivery, to a bucket's bound)."""
    alerts = int(rate * seconds)
    spec = _spec(bootstrap, alerts)
    messages = _made_beforehand(spec)
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out))
        try:
            chain.start()
            feed(spec, rate_per_s=rate, messages=messages)
            chain.wait_for(alerts, timeout_s=300)
            delivered = chain.statuses("distribute")[0]["latency"].get("distribute", {})
        finally:
            chain.stop()
    raw = {
        f"{m.topic()}/{m.partition()}@{m.offset()}": m.timestamp()[1]
        for m in _timestamps(bootstrap, spec.kafka.raw_topic, alerts)
    }
    from starling.alert.decoder import AlertDecoder
    from starling.transport.kafka.envelope import decode_envelope

    decoder = AlertDecoder()
    delays = []
    spans: dict[str, list[float]] = {"ingest": [], "filter": []}
    for message in _timestamps(bootstrap, spec.kafka.topic("filtered"), alerts):
        envelope = decode_envelope(message.value(), decoder)
        delays.append(message.timestamp()[1] - raw[envelope.alert.origin])
        times = envelope.times
        spans["ingest"].append(1000 * (times["ingest"] - times["survey"]))
        spans["filter"].append(1000 * (times["filter"] - times["ingest"]))
    delays.sort()
    console.print(f"  {len(delays):,} alerts at {rate:.0f}/s: p50 {statistics.median(delays):.0f} ms")
    where = {name: (statistics.median(v), sorted(v)[int(0.99 * (len(v) - 1))]) for name, v in spans.items()}
    if delivered.get("count"):
        where["distribute (to a bucket)"] = (1000 * delivered["p50_s"], 1000 * delivered["p99_s"])
    for name, (p50, p99) in where.items():
        console.print(f"    {name}: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    return statistics.median(delays), delays[int(0.99 * (len(delays) - 1))], len(delays), where


def visit_seconds(bootstrap: str, alerts: int) -> tuple[float, float]:
    """Seconds from the first alert of a visit produced to the last one stored (workers already up, the
    visit's messages made beforehand, as a survey's are), and the cores the machine used meanwhile: its CPU
    seconds over those seconds, every process's (the workers, the broker, the producer, and whatever else
    runs: nothing else is started meanwhile)."""
    spec = _spec(bootstrap, alerts)
    messages = _made_beforehand(spec)
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out))
        try:
            chain.start()
            begin, cpu_begin = time.perf_counter(), machine_cpu_s()
            feed(spec, messages=messages)
            chain.wait_for(alerts, timeout_s=300)
            seconds = time.perf_counter() - begin
            return seconds, (machine_cpu_s() - cpu_begin) / seconds
        finally:
            chain.stop()


def catch_up_rate(bootstrap: str, alerts: int) -> float:
    """Alerts/s at which the whole chain, started after ``alerts`` of a deep night were put on Kafka (as
    after a night down), stores them all; counted from the chain's start, its processes' start included."""
    spec = _spec(bootstrap, alerts, history="deep")
    feed(spec)
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out))
        try:
            begin = time.perf_counter()
            chain.start()
            chain.wait_for(alerts, timeout_s=900)
            return alerts / (time.perf_counter() - begin)
        finally:
            chain.stop()


def _visit_figures(visit: dict[int, tuple[float, float, float]]) -> list[tuple[str, str, str, str]]:
    """Each visit's time against Rubin's cadence (the next visit comes 39 s later; the 10,000-alert visit
    is held to 15 s), and against plain decoding of the same alerts."""
    return [
        (
            f"{size:,}-alert visit through the chain vs {VISIT_TARGET_S[size]:.0f} s",
            f"{seconds / VISIT_TARGET_S[size]:.2f}x",
            "< 1.00x",
            f"{seconds:.1f} s, the machine's CPU {cores_used:.1f} cores; plain decoding alone {plain:.1f} s "
            f"({seconds / plain:.1f}x that)",
        )
        for size, (seconds, cores_used, plain) in visit.items()
    ]


def run_kafka_benchmarks(
    bootstrap: str, quick: bool, plain_rate: Callable[[int], float], console: Console
) -> list[tuple[str, str, str, str]]:
    """All four figures; the topics they made (prefix "bench...") are deleted at the end."""
    try:
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        ingest_alerts = 3_000 if quick else 10_000
        console.print(f"kafka 1/7 ingest throughput over Kafka, {ingest_alerts:,} alerts")
        rounds = 1 if quick else 2
        ingest, where_ingest = max(ingest_rate(bootstrap, ingest_alerts) for _ in range(rounds))
        plain = plain_rate(ingest_alerts)
        console.print(f"  ingest {ingest:,.0f}/s ({where_ingest}), plain fastavro {plain:,.0f}/s")
        # Each step's topics go once it is done: a deleted log's dirty pages are never written back, and
        # gigabytes of them would slow the broker's writes in the steps after (the 40,000-alert visit
        # alone puts 8 GB on Kafka).
        delete_topics(settings, "bench")

        console.print("kafka 2/7 end-to-end latency at 250 alerts/s")
        p50, p99, measured, where = latency_ms(bootstrap, 250.0, 12.0 if quick else 40.0, console)
        delete_topics(settings, "bench")

        visit: dict[int, tuple[float, float, float]] = {}

        def one_visit(size: int) -> None:
            seconds, cores_used = visit_seconds(bootstrap, size)
            visit[size] = (seconds, cores_used, size / plain_rate(size))
            console.print(
                f"  {size:,} alerts: {seconds:.1f} s, the machine's CPU {cores_used:.1f} cores "
                f"(plain decoding alone: {visit[size][2]:.1f} s)"
            )
            delete_topics(settings, "bench")

        console.print("kafka 3/7 a visit of 10,000 alerts (Rubin's average) through the whole chain")
        one_visit(10_000)

        replica_alerts = 6_000 if quick else 10_000
        console.print(f"kafka 4/7 ingest stage, one replica vs two, {replica_alerts:,} alerts")
        ingest_plan = replica_figures(
            lambda: _spec(bootstrap, replica_alerts), "ingest", "ingest", replica_alerts, console
        )
        delete_topics(settings, "bench")
        console.print(
            f"kafka 5/7 filter stage with 1,000 filters, one replica vs two, {replica_alerts:,} alerts"
        )
        filter_plan = replica_figures(
            lambda: with_filters(_spec(bootstrap, replica_alerts), 1000),
            "filter",
            "filter-stage (1,000 filters)",
            replica_alerts,
            console,
        )
        delete_topics(settings, "bench")

        backlog = 1_500 if quick else 5_000
        console.print(f"kafka 6/7 catch-up: a backlog of {backlog:,} deep-night alerts drained by the chain")
        catch_up = catch_up_rate(bootstrap, backlog)
        console.print(f"  {catch_up:,.0f} alerts/s ({catch_up / RUBIN_AVERAGE_RATE:.2f}x Rubin's average)")
        delete_topics(settings, "bench")

        if not quick:  # last: the heaviest on the broker's disk
            console.print("kafka 7/7 a visit of 40,000 alerts (Rubin's peak) through the whole chain")
            one_visit(40_000)

        return [
            (
                "catch-up: a deep-night backlog drained by the chain vs Rubin's average rate",
                f"{catch_up / RUBIN_AVERAGE_RATE:.2f}x",
                "well above 1x",
                f"{catch_up:,.0f} vs {RUBIN_AVERAGE_RATE:,.0f} alerts/s "
                f"({backlog:,} alerts, the processes' start included)",
            ),
            (
                "ingest over Kafka vs plain fastavro",
                f"{ingest / plain:.2f}x",
                ">= 0.80x",  # issue 19's target
                f"{ingest:,.0f} vs {plain:,.0f} alerts/s; {where_ingest}",
            ),
            (
                "latency p99 at 250 alerts/s vs 1 s",
                f"{p99 / 1000:.2f}x",
                "< 1.00x",
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms over {measured:,} alerts",
            ),
            (
                "where the time goes at 250/s: each stage's p50 / p99 (ratio: ingest's p50 / the whole)",
                f"{where['ingest'][0] / p50:.2f}x",
                "(info)",
                ", ".join(f"{name} {a:.0f} / {b:.0f} ms" for name, (a, b) in where.items()),
            ),
            *_visit_figures(visit),
            *ingest_plan,
            *filter_plan,
        ]
    finally:
        delete_topics(KafkaSettings(bootstrap_servers=bootstrap), "bench")
