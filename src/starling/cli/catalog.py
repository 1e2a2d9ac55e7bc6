"""``starling catalog``: load a catalogue (CSV, FITS or Parquet) into an index for ``xmatch``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

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
    from starling.components.annotators.catalog_index import CatalogIndex
    from starling.components.annotators.crossmatch import catalogs_directory

    started = time.perf_counter()
    carried = [c.strip() for c in columns.split(",") if c.strip()]
    try:
        console.print(f"reading {source} ...")
        table = _read(source)
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


def _read(source: Path) -> Any:
    """An astropy Table from CSV or FITS (astropy), or Parquet (pyarrow, column by column)."""
    from astropy.table import Table as AstropyTable

    kind = _format(source)
    if kind == "parquet":
        import pyarrow.parquet as parquet

        columns = parquet.read_table(source)
        return AstropyTable({name: columns[name].to_numpy() for name in columns.column_names})
    return AstropyTable.read(source, format=kind)


def _format(source: Path) -> str | None:
    suffixes = "".join(source.suffixes).lower()
    if suffixes.endswith(".parquet"):
        return "parquet"
    if suffixes.endswith((".csv", ".csv.gz")):
        return "ascii.csv"
    if suffixes.endswith((".fits", ".fits.gz", ".fit")):
        return "fits"
    return None


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
