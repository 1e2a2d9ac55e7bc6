"""``starling filter``: write, check, submit and follow your filters from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from starling.cli.options import Controller, Token, ask, json_object
from starling.cli.terminal import console, report_error

filter_app = typer.Typer(no_args_is_help=True, help="Your filters: check, submit, list, change, try.")


@filter_app.command("fields")
def fields(markdown: Annotated[bool, typer.Option(help="as a Markdown table")] = False) -> None:
    """Every field a filter can use, with its type and unit."""
    from starling.components.filters.adql import current_catalogue, fields_markdown

    if markdown:
        typer.echo(fields_markdown(), nl=False)  # plain text: a Markdown table must not be wrapped
        return

    table = Table()
    for column in ("field", "type", "unit", "what"):
        table.add_column(column)
    for field in current_catalogue().all():
        table.add_row(field.name, field.type, field.unit, field.description)
    console.print(table)


@filter_app.command("check")
def check(expression: str) -> None:
    """Check an expression without submitting it: the fields it uses, or where it is wrong."""
    from starling.adql.language import compile_filter
    from starling.adql.parse import FilterSyntaxError

    try:
        compiled = compile_filter(expression)
    except FilterSyntaxError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"valid; uses {', '.join(sorted(compiled.fields))}")


@filter_app.command("add")
def add(
    name: str,
    expression: str,
    output: Annotated[
        list[str] | None,
        typer.Option("--output", help='an output as JSON, e.g. {"type": "kafka"} (repeatable)'),
    ] = None,
    description: Annotated[str, typer.Option()] = "",
    max_per_visit: Annotated[int | None, typer.Option()] = None,
    max_per_minute: Annotated[int | None, typer.Option()] = None,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Submit a filter; it goes live for the alerts that arrive after."""
    outputs = [json_object(o, "an output") for o in output or []]
    body: dict[str, Any] = {
        "name": name,
        "expression": expression,
        "description": description,
        "outputs": outputs,
    }
    if max_per_visit:
        body["max_per_visit"] = max_per_visit
    if max_per_minute:
        body["max_per_minute"] = max_per_minute
    console.print(ask(controller, token, lambda c: c.submit_filter(body)))


@filter_app.command("list")
def list_filters(controller: Controller = None, token: Token = None) -> None:
    """Your filters and their counts."""
    table = Table()
    for column in ("name", "owner", "expression", "paused", "seen", "matched", "delivered", "failed"):
        table.add_column(column)
    for f in ask(controller, token, lambda c: c.filters()):
        counts = f["counts"]
        table.add_row(
            f["name"],
            f["owner"],
            f["expression"],
            str(f["paused"]),
            str(counts["seen"]),
            str(counts["matched"]),
            str(counts["delivered"]),
            str(counts["failed_deliveries"]),
        )
    console.print(table)


@filter_app.command("change")
def change(
    name: str,
    expression: Annotated[str | None, typer.Option()] = None,
    output: Annotated[list[str] | None, typer.Option("--output", help="replaces the outputs")] = None,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Change a filter's expression or outputs."""
    body: dict[str, Any] = {}
    if expression is not None:
        body["expression"] = expression
    if output is not None:
        body["outputs"] = [json_object(o, "an output") for o in output]
    console.print(ask(controller, token, lambda c: c.change_filter(name, body)))


@filter_app.command("pause")
def pause(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.pause_filter(name)))


@filter_app.command("resume")
def resume(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.pause_filter(name, paused=False)))


@filter_app.command("remove")
def remove(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.delete_filter(name)))


@filter_app.command("try")
def try_filter(
    expression: str,
    limit: Annotated[int, typer.Option(help="how many of the latest stored alerts")] = 10_000,
    store: Annotated[
        str | None,
        typer.Option(
            help="a store to read here (a SQLite file or a PostgreSQL URL) instead of asking the controller"
        ),
    ] = None,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """How many stored alerts the filter would have matched, and a sample."""
    if store is not None:
        from starling.adql.parse import FilterSyntaxError
        from starling.control.trial import try_filter_on_store
        from starling.errors import StarlingError

        try:
            location = store if "://" in store else Path(store)
            result = try_filter_on_store(location, expression, limit, sample=5)
        except (FilterSyntaxError, StarlingError) as exc:
            report_error(str(exc))
            raise typer.Exit(2) from None
    else:
        result = ask(controller, token, lambda c: c.try_filter(expression, limit, sample=5))
    matched, examined = result["matched"], result["alerts_examined"]
    console.print(f"{matched:,} of {examined:,} stored alerts match ({result['fraction']:.2%})")
    for row in result["sample"]:
        console.print(
            f"  {row['survey']} {row['alert_id']} {row['object_id']} mag={row['mag']}", markup=False
        )
