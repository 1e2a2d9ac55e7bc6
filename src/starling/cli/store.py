"""``starling store``: the store's schema, its rows, its retention and its cutouts, by location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from starling.cli.terminal import console, report_error

store_app = typer.Typer(no_args_is_help=True, help="The store: migrate, count, prune, read cutouts.")

Location = Annotated[
    str,
    typer.Option("--store", "-s", help="a SQLite file or a PostgreSQL URL (postgresql://user@host/db)"),
]
Cutouts = Annotated[Path | None, typer.Option(help="the directory of the cutout files")]


@store_app.command("migrate")
def migrate_store(
    store: Location, revision: Annotated[str, typer.Option(help="target revision")] = "head"
) -> None:
    """Bring the schema to ``revision`` (online: writers go on writing)."""
    from starling.errors import StarlingError
    from starling.store import migrate

    try:
        migrate.upgrade(store, revision)
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    console.print(f"store at revision {migrate.HEAD if revision == 'head' else revision}")


@store_app.command("counts")
def counts(store: Location) -> None:
    """Rows per table."""
    from starling.errors import StarlingError
    from starling.store.open import open_store

    try:
        opened = open_store(store)
        try:
            rows = opened.counts()
        finally:
            opened.close()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    table = Table("table", "rows")
    for name, count in rows.items():
        table.add_row(name, f"{count:,}")
    console.print(table)


@store_app.command("prune")
def prune(
    store: Location,
    keep: Annotated[
        list[str], typer.Argument(help="table=days, e.g. alerts=30 cutouts=7 (others: for ever)")
    ],
    cutouts: Cutouts = None,
) -> None:
    """Remove what the retention policy no longer keeps, counted back from the newest stored alert."""
    from starling.errors import StarlingError
    from starling.store.open import open_store
    from starling.store.retention import RetentionPolicy

    try:
        policy = RetentionPolicy.parse_keep(keep)
    except ValueError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    try:
        opened = open_store(store, cutouts=cutouts)
        try:
            removed = opened.prune(policy)
        finally:
            opened.close()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    for name, count in removed.items():
        console.print(f"{name}: {count:,} removed")


@store_app.command("cutout")
def cutout(
    store: Location,
    survey: str,
    alert_id: int,
    role: Annotated[str, typer.Argument(help="science, template or difference")],
    cutouts: Annotated[Path, typer.Option(help="the directory of the cutout files")],
    to: Annotated[Path, typer.Option("--to", help="where to write the bytes (as the survey sent them)")],
) -> None:
    """Write one stored cutout to a file."""
    from starling.errors import StarlingError
    from starling.store.open import open_store

    try:
        opened = open_store(store, cutouts=cutouts)
        try:
            data = opened.cutout(survey, alert_id, role)
        finally:
            opened.close()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    to.write_bytes(data)
    console.print(f"{to}: {len(data):,} bytes")
