"""``starling deadletters``: what was refused and why, and running it again once the cause is fixed."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from starling.cli.terminal import console, report_error

deadletters_app = typer.Typer(no_args_is_help=True, help="Dead letters: summarise them, run them again.")


@deadletters_app.command("summary")
def summary(path: Annotated[Path, typer.Argument(help="a dead-letters.jsonl file")]) -> None:
    """How many letters, by stage, component and reason."""
    from starling.core.deadletter import read_dead_letters

    if not path.is_file():
        report_error(f"no dead-letters file at {path}")
        raise typer.Exit(2)
    counted = Counter((d.stage, d.component, d.reason) for d in read_dead_letters(path))
    table = Table(title=f"{sum(counted.values()):,} dead letters in {path}", title_justify="left")
    for column in ("count", "stage", "component", "reason"):
        table.add_column(column)
    for (stage, component, reason), count in counted.most_common():
        table.add_row(f"{count:,}", stage, component, reason)
    console.print(table)


@deadletters_app.command("replay")
def replay(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="the run's output (its dead-letters.jsonl)")
    ] = Path("starling-output"),
    pipeline: Annotated[Path | None, typer.Option(help="the pipeline to run them through")] = None,
    stage: Annotated[
        list[str] | None, typer.Option(help="only the letters of these stages (repeatable)")
    ] = None,
) -> None:
    """Run the dead letters of an output again, through the pipeline (embedded).

    The file is moved aside first (``dead-letters.<time>.replayed.jsonl``); what fails again is
    dead-lettered anew, with its reason."""
    from starling.assembly import assemble
    from starling.core.embedded import EmbeddedPipeline
    from starling.core.spec import ComponentSpec
    from starling.errors import StarlingError

    letters = output / "dead-letters.jsonl"
    if not letters.is_file():
        report_error(f"no dead letters to replay in {output}")
        raise typer.Exit(2)
    aside = output / f"dead-letters.{time.strftime('%Y%m%dT%H%M%S')}.replayed.jsonl"
    letters.rename(aside)
    try:
        spec = assemble(pipeline)
        source = ComponentSpec(use="dead-letters", config={"path": str(aside), "stages": stage})
        result = EmbeddedPipeline(spec.model_copy(update={"source": source}), output).run()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    stats = result.stats
    again = stats.stages["decode"].failed + sum(
        c.failed for name, c in stats.stages.items() if name != "decode"
    )
    console.print(
        f"{stats.messages_in:,} replayed from {aside}: {stats.alerts_decoded:,} alerts through, "
        f"{again:,} refused again" + (f" (in {letters})" if again else "")
    )


@deadletters_app.command("requeue")
def requeue(
    pipeline: Annotated[
        Path | None, typer.Option(help="the deployment's pipeline (its Kafka settings)")
    ] = None,
) -> None:
    """Over Kafka: put the dead-letter topic's messages back on the topics they came from, once their
    cause is fixed; the running stages take them again."""
    from starling.assembly import assemble
    from starling.errors import StarlingError
    from starling.transport.kafka.deadletters import requeue_dead_letters

    try:
        spec = assemble(pipeline)
        counts = requeue_dead_letters(spec.kafka)
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    total = sum(counts.values())
    console.print(
        f"{total:,} dead letters requeued" + "".join(f"\n  {n:,} to {t}" for t, n in counts.items())
    )
