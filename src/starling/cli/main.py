"""The ``starling`` command."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from starling.cli.terminal import console, report_error
from starling.core.chain import RunStats
from starling.core.embedded import EmbeddedPipeline, RunSummary
from starling.core.registry import available_components
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.errors import ConfigError, StarlingError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Starling: an alert broker for ZTF and Rubin."
)


def _register_subcommands() -> None:
    from starling.cli.catalog import catalog_app, watchlist_app, watchmap_app
    from starling.cli.control import ctl_app, token_app
    from starling.cli.deadletters import deadletters_app
    from starling.cli.deploy import deploy_app
    from starling.cli.filters import filter_app

    app.add_typer(ctl_app, name="ctl")
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(filter_app, name="filter")
    app.add_typer(deadletters_app, name="deadletters")
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(watchlist_app, name="watchlist")
    app.add_typer(watchmap_app, name="watchmap")
    app.add_typer(token_app, name="token")


def input_source(inputs: list[Path], alerts: int) -> ComponentSpec:
    """Replay the inputs, or with none, a synthetic night of ``alerts``."""
    if inputs:
        return ComponentSpec(use="replay", config={"paths": [str(p) for p in inputs]})
    return ComponentSpec(use="synthetic", config={"alerts": alerts})


def default_pipeline(source: ComponentSpec, batch_size: int = 500) -> PipelineSpec:
    """The embedded default: summarise each light curve, two example filters, and write everything
    to the SQLite store and the matches to files."""
    return PipelineSpec(
        batch_size=batch_size,
        source=source,
        annotators=[ComponentSpec(use="history-summary")],
        filters=[
            ComponentSpec(use="threshold", name="bright", config={"max_mag": 18.5, "min_reliability": 0.5}),
            ComponentSpec(
                use="threshold", name="confirmed", config={"min_detections": 3, "min_reliability": 0.7}
            ),
        ],
        sinks=[ComponentSpec(use="store"), ComponentSpec(use="files")],
    )


def _print_summary(summary: RunSummary, output: Path) -> None:
    stats = summary.stats
    console.print()
    console.print(
        f"[bold]{stats.messages_in:,}[/] messages in, [bold]{stats.alerts_decoded:,}[/] alerts decoded "
        f"in {stats.elapsed_s:.1f} s: [bold]{stats.alerts_per_s:,.0f} alerts/s[/]"
    )
    table = Table(title="per stage", title_justify="left")
    for column in ("stage", "kind", "in", "out / matched", "failed"):
        table.add_column(column, justify="right" if column in ("in", "out / matched", "failed") else "left")
    for name, counts in stats.stages.items():
        table.add_row(
            name, counts.kind, f"{counts.alerts_in:,}", f"{counts.alerts_out:,}", f"{counts.failed:,}"
        )
    console.print(table)
    if summary.dead_letters:
        rejected = Table(
            title=f"rejected ({sum(summary.dead_letters.values())}), in {summary.dead_letter_path}",
            title_justify="left",
        )
        rejected.add_column("count", justify="right")
        rejected.add_column("reason")
        for reason, count in sorted(summary.dead_letters.items(), key=lambda item: -item[1])[:15]:
            rejected.add_row(str(count), reason)
        console.print(rejected)
    else:
        console.print("rejected: none")
    console.print(f"results in [bold]{output}[/]:")
    for name, described in summary.outputs.items():
        console.print(f"  {name}: {described}")


@app.command()
def run(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help=".avro files, directories or .tar(.gz) archives")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="where the store and files go")] = Path(
        "starling-output"
    ),
    pipeline: Annotated[Path | None, typer.Option(help="a pipeline description (TOML)")] = None,
    alerts: Annotated[int, typer.Option(help="alerts in the synthetic night (when no inputs)")] = 20_000,
    batch_size: Annotated[int, typer.Option(help="alerts per batch")] = 500,
    schema_registry: Annotated[
        str | None, typer.Option(help="Confluent schema registry URL for Rubin")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    control_port: Annotated[
        int | None, typer.Option(help="serve the control API on 127.0.0.1 at this port (0: any free port)")
    ] = None,
) -> None:
    """Run the whole pipeline in this process (the embedded default) and print a summary."""
    from starling.alert.decoder import AlertDecoder
    from starling.alert.schemas import default_schema_source

    try:
        spec = load_pipeline(pipeline, input_source(inputs or [], alerts))
        if not pipeline:
            spec = spec.model_copy(update={"batch_size": batch_size})
        runner = EmbeddedPipeline(spec, output, AlertDecoder(default_schema_source(schema_registry)))
        server = None
        if control_port is not None:
            from starling.control.auth import SharedSecret, secret_from_environment_or_file
            from starling.control.service import BackgroundServer, worker_app

            token_file = output / "run" / "control.token"
            secret, _ = secret_from_environment_or_file(token_file)
            server = BackgroundServer(worker_app(runner, SharedSecret(secret)), port=control_port)
            console.print(f"control API on http://127.0.0.1:{server.start()} (token in {token_file})")
        try:
            summary = _run_with_progress(runner, quiet)
        finally:
            if server is not None:
                server.stop()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    _print_summary(summary, output)


def _run_with_progress(runner: EmbeddedPipeline, quiet: bool) -> RunSummary:
    if quiet:
        return runner.run()
    columns: list[Any] = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("alerts", total=runner.source.expected_count(), rate="")

        def update(stats: RunStats) -> None:
            progress.update(task, completed=stats.messages_in, rate=f"{stats.alerts_per_s:,.0f}/s")

        return runner.run(on_batch=update)


@app.command()
def synth(
    output: Annotated[Path, typer.Argument(help="a directory, or a file ending .tar / .tar.gz")],
    alerts: Annotated[int, typer.Option(help="how many alerts")] = 1000,
    surveys: Annotated[str, typer.Option(help="comma-separated: ztf, rubin")] = "ztf,rubin",
    alerts_per_visit: Annotated[int, typer.Option(help="alerts per visit")] = 500,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Write a synthetic night as files: ZTF .avro containers and Rubin wire-format .bin messages."""
    from starling.synthetic.generator import SyntheticConfig, SyntheticNight

    try:
        config = SyntheticConfig.model_validate(
            {
                "alerts": alerts,
                "alerts_per_visit": alerts_per_visit,
                "seed": seed,
                "surveys": [s.strip() for s in surveys.split(",")],
            }
        )
    except ValueError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    night = SyntheticNight(config)
    written = 0
    compression = {".tar": "", ".gz": "gz", ".tgz": "gz"}.get(output.suffix)
    with Progress(console=console) as progress:
        task = progress.add_task("writing", total=alerts)
        if compression is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(output, "w:gz" if compression else "w") as archive:
                for origin, payload in night:
                    info = tarfile.TarInfo(_synthetic_file_name(origin))
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
                    written += 1
                    progress.advance(task)
        else:
            output.mkdir(parents=True, exist_ok=True)
            for origin, payload in night:
                (output / _synthetic_file_name(origin)).write_bytes(payload)
                written += 1
                progress.advance(task)
    console.print(f"wrote {written} alerts to {output}")


def _synthetic_file_name(origin: str) -> str:
    _, survey, visit, number = origin.split(":")
    suffix = "avro" if survey == "ztf" else "bin"
    return f"{survey}-{visit}-{int(number):07d}.{suffix}"


def load_pipeline(pipeline: Path | None, source: ComponentSpec | None = None) -> PipelineSpec:
    """The pipeline of a file (or the embedded default), with its filters' deliveries routed."""
    from starling.components.sinks.deliver.sink import with_delivery

    spec = PipelineSpec.from_file(pipeline) if pipeline else default_pipeline(source or input_source([], 1))
    return with_delivery(spec)


def _load_spec(pipeline: Path | None, inputs: list[Path] | None = None, alerts: int = 20_000) -> PipelineSpec:
    return load_pipeline(pipeline, input_source(inputs or [], alerts))


@app.command()
def serve(
    stage: Annotated[str, typer.Argument(help="ingest, filter or distribute")],
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
) -> None:
    """Run one stage as a service over Kafka: consume its input topic in a consumer group, run its
    components, produce its output topic, and serve the control API (/health, /ready, /status, /metrics)."""
    import logging
    import signal

    from starling.alert.decoder import AlertDecoder
    from starling.alert.schemas import default_schema_source
    from starling.control.service import BackgroundServer, worker_app
    from starling.core.stages import STAGES
    from starling.transport.kafka.worker import StageWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if stage not in STAGES:
        report_error(f"no stage {stage!r}; stages are {', '.join(STAGES)}")
        raise typer.Exit(2)
    try:
        spec = _load_spec(pipeline)
        worker = StageWorker(spec, stage, output, AlertDecoder(default_schema_source(schema_registry)))
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    from starling.control.auth import SharedSecret, secret_from_environment_or_file

    token_file = output / "run" / f"{stage}-control.token"
    secret, made = secret_from_environment_or_file(token_file)
    server = BackgroundServer(worker_app(worker, SharedSecret(secret)), host=host, port=port)
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


@app.command()
def feed(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="files to replay (default: a synthetic night)")
    ] = None,
    pipeline: Annotated[Path | None, typer.Option(help="a pipeline description (TOML or JSON)")] = None,
    alerts: Annotated[int, typer.Option(help="alerts in the synthetic night (when no inputs)")] = 20_000,
    topic: Annotated[str | None, typer.Option(help="topic to write (default <prefix>.raw)")] = None,
    rate: Annotated[float, typer.Option(help="alerts per second (0: as fast as possible)")] = 0.0,
) -> None:
    """Put alerts on Kafka as a survey would (ZTF containers, Rubin wire format), for the ingest stage."""
    from starling.transport.kafka.feed import feed as feed_messages

    try:
        spec = _load_spec(pipeline, inputs, alerts)
        with Progress(console=console) as progress:
            task = progress.add_task(
                "feeding", total=spec.source.config.get("alerts") if not inputs else None
            )
            sent = feed_messages(spec, topic, rate, on_progress=lambda n: progress.update(task, completed=n))
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"fed {sent:,} messages to {topic or spec.kafka.raw_topic}")


@app.command()
def up(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="files to replay (default: a synthetic night)")
    ] = None,
    pipeline: Annotated[Path | None, typer.Option(help="a pipeline description (TOML or JSON)")] = None,
    alerts: Annotated[int, typer.Option(help="alerts in the synthetic night (when no inputs)")] = 20_000,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("starling-output"),
    replicas: Annotated[list[str] | None, typer.Option(help="stage=N, e.g. --replicas ingest=2")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the stream to finish")] = 600.0,
) -> None:
    """Run the whole chain over Kafka on this machine (a process per stage), feed it, wait, and stop."""
    from starling.control.backends.processes import LocalChain
    from starling.core.stages import STAGES, StageName
    from starling.transport.kafka.feed import feed as feed_messages

    try:
        spec = _load_spec(pipeline, inputs, alerts)
        counts: dict[StageName, int] = {}
        for item in replicas or []:
            name, _, number = item.partition("=")
            if name not in STAGES or not number.isdigit() or int(number) < 1:
                raise ConfigError(
                    f"--replicas {item!r}: expected stage=N with a stage among {', '.join(STAGES)}"
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
        for stage in ("ingest", "filter", "distribute"):
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


@app.command()
def controller(
    pipeline: Annotated[Path | None, typer.Option(help="the pipeline to start with (first run only)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="store, logs and run files")] = Path(
        "starling-output"
    ),
    port: Annotated[int, typer.Option(help="API port (0: any free port)")] = 8765,
    port_file: Annotated[Path | None, typer.Option(help="write the API's port here")] = None,
    host: Annotated[str, typer.Option(help="address the API listens on (0.0.0.0 in a pod)")] = "127.0.0.1",
    backend: Annotated[
        str, typer.Option(help="local (worker processes here) or kubernetes (a Deployment per stage)")
    ] = "local",
    namespace: Annotated[str, typer.Option(help="kubernetes: the namespace of the workers")] = "starling",
    image: Annotated[str | None, typer.Option(help="kubernetes: the image the workers run")] = None,
) -> None:
    """Run the controller: keeps the desired pipeline in the store, runs the workers through its backend,
    and serves the API that changes the pipeline while it runs (see `starling ctl`)."""
    from starling.cli.control import BackendChoice, run_controller

    if backend not in ("local", "kubernetes"):
        report_error(f"--backend is local or kubernetes, not {backend!r}")
        raise typer.Exit(2)
    try:
        choice = BackendChoice(kind=backend, namespace=namespace, image=image)
        run_controller(pipeline, output, port, port_file, host, choice)
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None


@app.command()
def components() -> None:
    """List the installed components (entry points ``starling.components``)."""
    table = Table()
    table.add_column("name")
    table.add_column("class")
    for name, target in available_components().items():
        table.add_row(name, target)
    console.print(table)


_register_subcommands()


def main() -> None:  # pragma: no cover - console entry point
    app()
