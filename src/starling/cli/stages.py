"""``starling serve``, ``feed`` and ``up``: the stages as services over Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from starling.assembly import assemble
from starling.cli.terminal import console, report_error
from starling.errors import ConfigError, StarlingError

if TYPE_CHECKING:
    from starling.core.bodies import BodyResolver
    from starling.core.spec import PipelineSpec
    from starling.transport.kafka.worker import StageWorker


def serve(
    stage: Annotated[str, typer.Argument(help="a stage (default: ingest, filter, distribute)")],
    pipeline: Annotated[Path | None, typer.Option(help="a pipeline description (TOML or JSON)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="where sinks write")] = Path(
        "starling-output"
    ),
    port: Annotated[int, typer.Option(help="control API port (0: any free port)")] = 0,
    port_file: Annotated[Path | None, typer.Option(help="write the control API's port here")] = None,
    host: Annotated[str, typer.Option(help="address the control API listens on (0.0.0.0 in a pod)")] = (
        "127.0.0.1"
    ),
    schema_registry: Annotated[
        str | None, typer.Option(help="Confluent schema registry URL for Rubin")
    ] = None,
    held: Annotated[bool, typer.Option(help="take nothing until the controller wires the stage")] = False,
) -> None:
    """Run one stage as a service over Kafka: consume its input topic in a consumer group, run its
    components, produce its output topic, and serve the control API (/health, /ready, /status, /metrics)."""
    from starling.alert.decoder import AlertDecoder
    from starling.alert.schemas import default_schema_source
    from starling.core.collector import tune_for_stage
    from starling.core.service import start_service_process
    from starling.core.spec import file_version
    from starling.core.stages import stage_names
    from starling.transport.kafka.clients import require_identity
    from starling.transport.kafka.worker import StageWorker

    start_service_process()  # its log lines; its threads dumped on SIGUSR1
    try:
        # The version first: were the file replaced between the two reads, the worker would claim an
        # older version than it runs (the controller then pushes the list again), never a newer one.
        version = file_version(pipeline) if pipeline is not None else None
        spec = assemble(pipeline)
        if stage not in stage_names(spec):
            report_error(f"no stage {stage!r}; the pipeline's stages are {', '.join(stage_names(spec))}")
            raise typer.Exit(2)
        require_identity(stage, spec.stage(stage).own_principal)  # never the pipeline's access instead
        decoder = AlertDecoder(default_schema_source(schema_registry))
        worker = StageWorker(spec, stage, output, decoder, _bodies_for(spec, stage), held)
        worker.started_from(version)
        tune_for_stage()  # this process is the stage's worker, and nothing else
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    _serve_worker(worker, output, host, port, port_file)


def _serve_worker(worker: StageWorker, output: Path, host: str, port: int, port_file: Path | None) -> None:
    """Run ``worker`` behind its control API until it is stopped (SIGTERM, SIGINT) or drained."""
    import signal

    from starling.control.api.worker_app import worker_app
    from starling.control.auth import secret_from_environment_or_file, worker_authority
    from starling.control.server import BackgroundServer

    stage = worker.stage
    token_file = output / "run" / f"{stage}-control.token"
    secret, made = secret_from_environment_or_file(token_file)
    server = BackgroundServer(worker_app(worker, worker_authority(secret)), host=host, port=port)
    bound = server.start()
    if made:
        console.print(f"control token written to {token_file}")
    if port_file is not None:
        port_file.write_text(str(bound))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    console.print(f"{stage} worker: control API on http://{host}:{bound}")
    try:
        worker.run()
    finally:
        server.stop()


def _bodies_for(spec: PipelineSpec, stage: str) -> BodyResolver:
    """The controller's stored bodies that ``stage``'s components refer to, fetched before the worker is
    built; while the controller cannot be reached (it starts after its workers, or restarts), tried
    again for up to two minutes."""
    import threading

    from starling.control.client import controller_bodies
    from starling.core.outage import Backoff
    from starling.core.stages import stage_component_specs
    from starling.errors import OutageError

    bodies, backoff, never = controller_bodies(), Backoff(), threading.Event()
    deadline = time.monotonic() + 120.0
    while True:
        try:
            for component in stage_component_specs(spec, stage):
                bodies.resolve(component.config)
            return bodies
        except OutageError as exc:
            if time.monotonic() > deadline:
                raise
            backoff.wait(exc, never, "reading the controller's stored bodies")


# The options ``feed`` and ``up`` share: what to put on the survey topic.
Inputs = Annotated[
    list[Path] | None,
    typer.Argument(help="files to replay, replacing the pipeline's source (default: its source)"),
]
PipelineFile = Annotated[Path | None, typer.Option(help="a pipeline description (TOML or JSON)")]
SyntheticAlerts = Annotated[int, typer.Option(help="alerts in the synthetic night (when no inputs)")]


def feed(
    inputs: Inputs = None,
    pipeline: PipelineFile = None,
    alerts: SyntheticAlerts = 20_000,
    topic: Annotated[str | None, typer.Option(help="topic to write (default <prefix>.raw)")] = None,
    rate: Annotated[float, typer.Option(help="alerts per second (0: as fast as possible)")] = 0.0,
) -> None:
    """Put alerts on Kafka as a survey would (ZTF containers, Rubin wire format), for the ingest stage."""
    from starling.transport.kafka.feed import feed as feed_messages

    try:
        spec = assemble(pipeline, inputs, alerts)
        with Progress(console=console) as progress:
            task = progress.add_task(
                "feeding", total=spec.source.config.get("alerts") if not inputs else None
            )
            sent = feed_messages(spec, topic, rate, on_progress=lambda n: progress.update(task, completed=n))
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"fed {sent:,} messages to {topic or spec.kafka.raw_topic}")


def up(
    inputs: Inputs = None,
    pipeline: PipelineFile = None,
    alerts: SyntheticAlerts = 20_000,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("starling-output"),
    replicas: Annotated[list[str] | None, typer.Option(help="stage=N, e.g. --replicas ingest=2")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the stream to finish")] = 600.0,
) -> None:
    """Run the whole chain over Kafka on this machine (a process per stage), feed it, wait, and stop."""
    from starling.control.backends.processes import LocalChain
    from starling.core.stages import stage_names
    from starling.transport.kafka.feed import feed as feed_messages

    try:
        spec = assemble(pipeline, inputs, alerts)
        counts: dict[str, int] = {}
        for item in replicas or []:
            name, _, number = item.partition("=")
            if name not in stage_names(spec) or not number.isdigit() or int(number) < 1:
                raise ConfigError(
                    f"--replicas {item!r}: expected stage=N with a stage among {', '.join(stage_names(spec))}"
                )
            counts[name] = int(number)
    except (StarlingError, ValueError) as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    chain = LocalChain(spec, output, counts)
    started = time.perf_counter()
    try:
        chain.start()
        console.print(f"workers up: {', '.join(f'{w.stage}#{w.replica} :{w.port}' for w in chain.workers)}")
        sent = feed_messages(spec)
        with Progress(console=console) as progress:
            task = progress.add_task("through the chain", total=sent)
            while (done := chain.settled_count()) < sent:
                progress.update(task, completed=done)
                if time.perf_counter() - started > timeout:
                    raise StarlingError(f"only {done} of {sent} through after {timeout} s")
                time.sleep(0.2)
            progress.update(task, completed=sent)
        elapsed = time.perf_counter() - started
        for stage in stage_names(spec):
            for status in chain.statuses(stage):
                console.print(f"  {stage}: {status['components']}")
        console.print(
            f"{sent:,} alerts through the chain in {elapsed:.1f} s ({sent / elapsed:,.0f} alerts/s)"
        )
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    finally:
        chain.stop()
