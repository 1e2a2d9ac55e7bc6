"""``starling run``, ``starling synth`` and ``starling components``: the embedded pipeline on this machine."""

from __future__ import annotations

import io
import tarfile
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

from starling.assembly import assemble
from starling.cli.terminal import console, report_error
from starling.core.chain import RunStats
from starling.core.embedded import EmbeddedPipeline, RunSummary
from starling.core.registry import available_components
from starling.errors import StarlingError


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


def run(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help=".avro files, directories or .tar(.gz) archives")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="where the store and files go")] = Path(
        "starling-output"
    ),
    pipeline: Annotated[
        Path | None,
        typer.Option(help="a pipeline description (TOML); INPUTS, when given, replace its source"),
    ] = None,
    alerts: Annotated[
        int, typer.Option(help="alerts in the synthetic night (with no inputs and no pipeline)")
    ] = 20_000,
    batch_size: Annotated[
        int | None, typer.Option(help="alerts per batch (default: the pipeline's, or 500)")
    ] = None,
    schema_registry: Annotated[
        str | None, typer.Option(help="Confluent schema registry URL for Rubin")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    control_port: Annotated[
        int | None, typer.Option(help="serve the control API on 127.0.0.1 at this port (0: any free port)")
    ] = None,
) -> None:
    """Run the whole pipeline in this process (every stage, batches passed in memory) and print a summary.

    With no --pipeline, the embedded default pipeline; INPUTS, when given, replace the pipeline's source."""
    from starling.alert.decoder import AlertDecoder
    from starling.alert.schemas import default_schema_source

    try:
        spec = assemble(pipeline, inputs, alerts, batch_size)
        runner = EmbeddedPipeline(spec, output, AlertDecoder(default_schema_source(schema_registry)))
        server = None
        if control_port is not None:
            from starling.control.api.worker_app import worker_app
            from starling.control.auth import secret_from_environment_or_file, worker_authority
            from starling.control.server import BackgroundServer

            token_file = output / "run" / "control.token"
            secret, _ = secret_from_environment_or_file(token_file)
            server = BackgroundServer(worker_app(runner, worker_authority(secret)), port=control_port)
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


def components() -> None:
    """List the installed components (entry points ``starling.components``)."""
    table = Table()
    table.add_column("name")
    table.add_column("class")
    for name, target in available_components().items():
        table.add_row(name, target)
    console.print(table)
