"""The ``starling`` command."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from starling.errors import StarlingError
from starling.runtime.chain import RunStats
from starling.runtime.embedded import EmbeddedPipeline, RunSummary
from starling.runtime.registry import available_components
from starling.runtime.spec import ComponentSpec, PipelineSpec

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Starling: an alert broker for ZTF and Rubin."
)
console = Console()
errors = Console(stderr=True)


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
) -> None:
    """Run the whole pipeline in this process (the embedded default) and print a summary."""
    from starling.alert.decoder import AlertDecoder
    from starling.alert.schemas import default_schema_source

    try:
        spec = (
            PipelineSpec.from_toml(pipeline)
            if pipeline
            else default_pipeline(input_source(inputs or [], alerts), batch_size)
        )
        runner = EmbeddedPipeline(spec, output, AlertDecoder(default_schema_source(schema_registry)))
        summary = _run_with_progress(runner, quiet)
    except StarlingError as exc:
        errors.print(f"[red]error:[/] {exc}")
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
        errors.print(f"[red]error:[/] {exc}")
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


@app.command()
def components() -> None:
    """List the installed components (entry points ``starling.components``)."""
    table = Table()
    table.add_column("name")
    table.add_column("class")
    for name, target in available_components().items():
        table.add_row(name, target)
    console.print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()
