"""One and two replicas of a stage over Kafka, and the capacity plan's prediction of two from one.

For the ingest stage and for the filter stage with 1,000 live ADQL filters (``bench --only kafka``): the
plan's cost is what one replica was occupied per alert (its ``busy_s`` over its alerts), and it predicts the
time of two replicas on this machine's cores, which they share with the broker
(``starling.control.capacity.shared_cores_seconds``): a configuration it was not measured on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from rich.console import Console

from filter_bench import filter_specs
from starling.control.backends.processes import LocalChain
from starling.control.capacity import PLANNED_UTILIZATION, costs_from_statuses, shared_cores_seconds
from starling.core.spec import PipelineSpec
from starling.core.stages import stage_layout
from starling.transport.kafka.feed import feed

Figure = tuple[str, str, str, str]


def machine_cpu_s() -> float:
    """CPU seconds every process of this machine has taken so far (workers, broker, all): on a machine the
    workers share with the broker, what an alert costs is all of that."""
    times = psutil.cpu_times()
    return float(sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq")))


def with_filters(spec: PipelineSpec, count: int) -> PipelineSpec:
    """``spec`` with ``count`` live ADQL filters (the filter bench's) in its filter stage."""
    return spec.with_kind("filters", filter_specs(count))


def _fill_input(spec: PipelineSpec, stage: str, alerts: int, out: Path) -> None:
    """The stage's input topic filled: the survey's messages fed, and every stage before it run over them."""
    feed(spec)
    names = [s.name for s in spec.chain]
    before = names[: names.index(stage)]
    if not before:
        return
    chain = LocalChain(spec, out / "before", stages=before)
    try:
        chain.start()
        deadline = time.monotonic() + 600
        while sum(s["messages_in"] for s in chain.statuses(before[-1])) < alerts:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{before[-1]} did not take every message")
            time.sleep(0.2)
    finally:
        chain.stop()  # each worker flushes its producer: the stage's input is then whole


def replicas_seconds(
    spec: PipelineSpec, stage: str, alerts: int, replicas: int
) -> tuple[float, float, float]:
    """Seconds for ``replicas`` workers (processes) of ``stage`` to take ``alerts`` waiting on their topic,
    the seconds a replica was occupied per alert (the capacity plan's cost), and the machine's CPU seconds
    per alert meanwhile.

    The workers join their group and pause; once every partition of the input has an owner, its topic is
    filled (the stages before run first), and all resume at once; the clock runs until every message is
    taken. Timed is the stage's own processing, not the group join, the stages before nor the producer."""
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out), replicas={stage: replicas}, stages=[stage])
        try:
            chain.start()
            partitions = range(spec.kafka.partitions)
            everything = {f"{t}/{p}" for t in stage_layout(spec, stage).input_topics for p in partitions}
            deadline = time.perf_counter() + 120
            while True:
                for worker in chain.workers:
                    worker.post("/pause")
                statuses = chain.statuses(stage)
                owned = [set(s["assigned_partitions"]) for s in statuses]
                if len(statuses) == replicas and all(owned) and set().union(*owned) == everything:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the {stage} group did not settle")
                time.sleep(0.2)
            _fill_input(spec, stage, alerts, Path(out))
            begin, cpu_begin = time.perf_counter(), machine_cpu_s()
            for worker in chain.workers:
                worker.post("/resume")
            while sum(s["messages_in"] for s in chain.statuses(stage)) < alerts:
                if time.perf_counter() - begin > 600:
                    raise RuntimeError(f"{stage} did not finish")
                time.sleep(0.05)
            taken, cpu = time.perf_counter() - begin, machine_cpu_s() - cpu_begin
            cost = costs_from_statuses({stage: chain.statuses(stage)})[stage]
            return taken, cost, cpu / alerts
        finally:
            chain.stop()


def replica_figures(
    make_spec: Callable[[], PipelineSpec], stage: str, what: str, alerts: int, console: Console
) -> tuple[Figure, Figure]:
    """The plan's two replicas against two measured (each the best of two runs, each on fresh topics from
    ``make_spec``), and two replicas' speed-up over one."""
    one, cost, cpu = min(replicas_seconds(make_spec(), stage, alerts, 1) for _ in range(2))
    two, _, _ = min(replicas_seconds(make_spec(), stage, alerts, 2) for _ in range(2))
    # The plan's prediction for two replicas, from the costs measured on one (not fitted on two): on this
    # machine's cores, which the replicas share with the broker, at the plan's utilization of a core.
    cores = psutil.cpu_count() or 1  # the machine's, as the CPU measured is
    predicted = shared_cores_seconds(alerts, cost, cpu, 2, cores)
    console.print(
        f"  one replica {one:.1f} s, two replicas {two:.1f} s (planned from one: {predicted:.1f} s; "
        f"{1000 * cost:.2f} ms a replica is busy and {1000 * cpu:.2f} ms of the machine's CPU per alert, "
        f"{cores} cores)"
    )
    return (
        (
            f"capacity plan: two {what} replicas' time, planned from one's cost vs measured",
            f"{predicted / two:.2f}x",
            "0.80-1.20x",
            f"planned {predicted:.1f} s, measured {two:.1f} s ({cost * 1000:.2f} ms busy, "
            f"{cpu * 1000:.2f} ms of CPU per alert on {cores} cores shared with the broker, "
            f"planned at {PLANNED_UTILIZATION:.0%} of each)",
        ),
        (
            f"{what}, two replicas vs one (speed-up)",
            f"{one / two:.2f}x",
            "> 1.00x",
            f"{one:.1f} s -> {two:.1f} s for {alerts:,} alerts",
        ),
    )
