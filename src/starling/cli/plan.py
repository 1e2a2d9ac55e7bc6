"""``starling plan``: the replicas and cores each stage needs for Rubin's and ZTF's loads, from what each
stage costs per alert, measured here on a sample or read from a running pipeline
(``starling.control.capacity``)."""

from __future__ import annotations

import json
import math
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from starling.alert.decoder import AlertDecoder
from starling.assembly import assemble
from starling.cli.options import Controller, Token, ask
from starling.cli.terminal import console, report_error
from starling.components.sources.files import iter_messages
from starling.control.capacity import (
    DEFAULT_LOADS,
    PLANNED_UTILIZATION,
    Load,
    StagePlan,
    costs_from_statuses,
    plan,
)
from starling.control.client import ControllerClient
from starling.core.chain import RunStats
from starling.core.component import RawMessage
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.core.stages import chain_names, stage_names
from starling.errors import StarlingError
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.envelope import decode_envelope, encode_envelope

MEASURED_ALERTS = 1000


def measure_costs(spec: PipelineSpec, source: ComponentSpec, messages: list[RawMessage]) -> dict[str, float]:
    """CPU seconds per alert of each stage of ``spec`` reading ``source`` (whose messages are ``messages``),
    run here in the embedded runtime: each component's CPU time summed by its stage, plus the envelopes
    each hop between stages costs.

    The first batch is not counted: what it pays once (the filters compiled into their plan, schemas
    parsed, the store's tables made) is no cost per alert. With it, a sample of 300 alerts put 100 filters
    at 0.12 ms an alert, against 0.007 ms on a night of 10,000. A sample of one batch is run twice and
    counted the second time, when what is paid once in this process has been paid."""
    for _ in range(2):
        alerts, spent, after_the_first = _component_costs(spec, source)
        if after_the_first:
            break
    names = stage_names(spec)
    stage_of = {c.instance_name: stage.name for stage in spec.stages for c in stage.components}
    stage_of["decode"] = names[0]  # the first stage decodes the survey's messages
    costs: dict[str, float] = dict.fromkeys(names, 0.0)
    for component, seconds in spent.items():
        if component in stage_of:
            costs[stage_of[component]] += seconds / alerts
    hop = _envelope_cost(messages)
    # Each stage but the first reads an envelope; each of the chain's but the last writes one.
    chain = chain_names(spec)
    for index, name in enumerate(names):
        costs[name] += hop * ((index > 0) + (index < len(chain) - 1))
    return costs


def _component_costs(spec: PipelineSpec, source: ComponentSpec) -> tuple[int, dict[str, float], bool]:
    """The alerts after the first batch and each component's CPU seconds on them, and True; or, where the
    run was one batch, the whole run's, and False."""
    first: list[tuple[int, dict[str, float]]] = []

    def after_batch(stats: RunStats) -> None:
        if not first:
            first.append((stats.alerts_decoded, {name: c.cpu_s for name, c in stats.stages.items()}))

    with tempfile.TemporaryDirectory(prefix="starling-plan-") as scratch:
        pipeline = EmbeddedPipeline(spec.model_copy(update={"source": source}), Path(scratch))
        stats = pipeline.run(on_batch=after_batch).stats
    whole = {name: counts.cpu_s for name, counts in stats.stages.items()}
    if not first or first[0][0] >= stats.alerts_decoded:
        return max(1, stats.alerts_decoded), whole, False
    counted, before = first[0]
    spent = {name: seconds - before.get(name, 0.0) for name, seconds in whole.items()}
    return stats.alerts_decoded - counted, spent, True


def _envelope_cost(messages: list[RawMessage]) -> float:
    """CPU seconds per alert to write one envelope or read one (half of a round trip)."""
    decoder = AlertDecoder()
    alerts = [(a, m.payload) for m in messages for a in decoder.decode(m.payload, m.origin)]
    started = time.thread_time()
    for alert, payload in alerts:
        decode_envelope(encode_envelope(alert, payload, []), decoder)
    return (time.thread_time() - started) / max(1, len(alerts)) / 2


def _load(text: str) -> Load:
    name, _, rest = text.rpartition("=")
    alerts, _, interval = rest.partition("/")
    try:
        load = Load(name or text, int(alerts), float(interval))
    except ValueError:
        load = None
    if load is None or load.alerts <= 0 or not load.interval_s > 0:
        report_error(f"a load is NAME=ALERTS/SECONDS, both above 0, e.g. 'night=10000/39' (got {text!r})")
        raise typer.Exit(2)
    return load


def _running_costs(controller: str | None, token: str | None) -> dict[str, float]:
    statuses: dict[str, list[dict[str, Any]]] = {}
    stages = [s["name"] for s in ask(controller, token, lambda client: client.pipeline())["stages"]]
    for stage in stages:
        workers = ask(controller, token, partial(_workers, stage=stage))
        statuses[stage] = [w.get("status") or {} for w in workers]
    return costs_from_statuses(statuses)


def _workers(client: ControllerClient, stage: str) -> list[dict[str, Any]]:
    return list(client.request("GET", f"/stages/{stage}/workers"))


def _print_plan(planned: list[StagePlan], loads: list[Load], title: str) -> None:
    table = Table(title=title)
    for column in ("load", "stage", "CPU ms / alert", "replicas (cores)", "a visit takes"):
        table.add_column(column)
    for row in planned:
        table.add_row(
            row.load, row.stage, f"{row.cpu_ms_per_alert:.2f}", str(row.replicas), f"{row.visit_s:.1f} s"
        )
    console.print(table)
    for load in loads:
        cores = sum(r.replicas for r in planned if r.load == load.name)
        every = f"{load.alerts:,} alerts every {load.interval_s:g} s"
        console.print(f"{load.name}: {every} -> {cores} cores in all")


def plan_command(
    pipeline: Annotated[
        Path | None, typer.Option(help="the pipeline to measure (default: the default one)")
    ] = None,
    alerts: Annotated[int, typer.Option(help="synthetic alerts to measure on")] = 2000,
    samples: Annotated[
        Path | None, typer.Option(help="measure on the real alerts in this folder instead")
    ] = None,
    running: Annotated[
        bool, typer.Option(help="read the costs from a running pipeline's controller")
    ] = False,
    controller: Controller = None,
    token: Token = None,
    load: Annotated[
        list[str] | None, typer.Option(help="NAME=ALERTS/SECONDS a visit (repeatable; default: Rubin, ZTF)")
    ] = None,
    utilization: Annotated[
        float, typer.Option(help="the share of a core a replica is planned at")
    ] = PLANNED_UTILIZATION,
    json_file: Annotated[Path | None, typer.Option("--json", help="also write the plan here")] = None,
) -> None:
    """How many replicas (one core each) each stage needs to keep up with a survey's visits."""
    try:
        if running:
            costs = _running_costs(controller, token)
            measured = "the running pipeline's replicas"
        else:
            if samples:
                # A few real samples are replayed to about MEASURED_ALERTS, so that the costs paid once (a
                # schema compiled, a store opened) do not count as costs per alert.
                found = list(iter_messages([samples]))
                repeat = math.ceil(MEASURED_ALERTS / max(1, len(found)))
                source = ComponentSpec(use="replay", config={"paths": [str(samples)], "repeat": repeat})
                messages = found * repeat
            else:
                source = ComponentSpec(use="synthetic", config={"alerts": alerts, "cutouts": True})
                night = SyntheticNight(SyntheticConfig.model_validate(source.config))
                messages = [RawMessage(payload, origin) for origin, payload in night]
            costs = measure_costs(assemble(pipeline), source, messages)
            measured = f"{len(messages):,} {'real' if samples else 'synthetic'} messages, measured here"
        loads = [_load(text) for text in load] if load else list(DEFAULT_LOADS)
        planned = plan(costs, loads, utilization)
    except (StarlingError, ValueError) as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    _print_plan(planned, loads, f"Capacity plan ({measured}; replicas at {utilization:.0%} of a core)")
    if json_file is not None:
        json_file.write_text(
            json.dumps({"source": measured, "costs": costs, "plan": [vars(r) for r in planned]}, indent=2)
        )
