"""``starling catalog``: load a catalogue (CSV, FITS or Parquet) into an index for ``xmatch``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from starling.cli.terminal import console, report_error

catalog_app = typer.Typer(no_args_is_help=True, help="Catalogues for the crossmatch.")

Output = Annotated[
    Path, typer.Option("--output", "-o", help="the output directory (indexes in <output>/catalogs)")
]


@catalog_app.command("add")
def add(
    name: str,
    source: Path,
    ra_column: Annotated[str, typer.Option(help="right ascension column (degrees)")] = "ra",
    dec_column: Annotated[str, typer.Option(help="declination column (degrees)")] = "dec",
    id_column: Annotated[str, typer.Option(help="the id column")] = "id",
    columns: Annotated[str, typer.Option(help="other columns to carry, comma-separated")] = "",
    max_radius: Annotated[float, typer.Option(help="the largest search radius it will serve (arcsec)")] = 5.0,
    output: Output = Path("starling-output"),
) -> None:
    """Read a catalogue once and index it by HEALPix cell (memory-mapped files, never rebuilt)."""
    from starling.components.annotators.catalog_index import CatalogIndex, read_catalog_table
    from starling.components.annotators.crossmatch import catalogs_directory

    started = time.perf_counter()
    carried = [c.strip() for c in columns.split(",") if c.strip()]
    try:
        console.print(f"reading {source} ...")
        table = read_catalog_table(source)
        missing = [c for c in (ra_column, dec_column, id_column, *carried) if c not in table.colnames]
        if missing:
            report_error(f"{source} has no column {', '.join(missing)}; it has {', '.join(table.colnames)}")
            raise typer.Exit(2)
        console.print(f"  {len(table):,} rows in {time.perf_counter() - started:.1f} s; indexing ...")
        folder = catalogs_directory(None, output) / name
        index = CatalogIndex.build(
            folder,
            name,
            table[ra_column],
            table[dec_column],
            table[id_column],
            {c: table[c] for c in carried},
            max_radius,
        )
    except (OSError, ValueError) as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    console.print(
        f"catalogue {name}: {len(index):,} rows indexed at HEALPix depth {index.depth} in {folder} "
        f"({time.perf_counter() - started:.1f} s)"
    )


@catalog_app.command("list")
def list_catalogs(output: Output = Path("starling-output")) -> None:
    """The catalogues indexed here."""
    from starling.components.annotators.catalog_index import CatalogIndex
    from starling.components.annotators.crossmatch import catalogs_directory

    table = Table()
    for column in ("name", "rows", "depth", "max radius (arcsec)", "carried columns"):
        table.add_column(column)
    folder = catalogs_directory(None, output)
    for meta in sorted(folder.glob("*/meta.json")) if folder.exists() else []:
        index = CatalogIndex(meta.parent)
        table.add_row(
            index.name,
            f"{len(index):,}",
            str(index.depth),
            str(index.max_radius_arcsec),
            ", ".join(index.columns),
        )
    console.print(table)
