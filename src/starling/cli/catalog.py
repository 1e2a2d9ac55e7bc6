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


watchlist_app = typer.Typer(no_args_is_help=True, help="Your watchlists of targets (through the controller).")
watchmap_app = typer.Typer(no_args_is_help=True, help="Your watchmaps: sky regions (through the controller).")
Controller = Annotated[str | None, typer.Option(help="controller URL (or $STARLING_CONTROLLER)")]
Token = Annotated[str | None, typer.Option(help="access token (or $STARLING_TOKEN)")]


def _call(method: str, path: str, body: Any, controller: str | None, token: str | None) -> Any:
    from starling.cli.control import _call as call_controller

    return call_controller(method, path, body, controller, token)


@watchlist_app.command("add")
def watchlist_add(
    name: str,
    source: Annotated[
        Path, typer.Argument(help="CSV with columns name, ra, dec and optionally radius_arcsec")
    ],
    radius: Annotated[float, typer.Option(help="radius of the targets without one (arcsec)")] = 2.0,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Upload a watchlist (or replace one); alerts that arrive after are marked."""
    import csv

    try:
        with source.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        targets = [
            {
                "name": row["name"],
                "ra": float(row["ra"]),
                "dec": float(row["dec"]),
                **({"radius_arcsec": float(row["radius_arcsec"])} if row.get("radius_arcsec") else {}),
            }
            for row in rows
        ]
    except (OSError, KeyError, ValueError) as exc:
        report_error(f"cannot read {source}: {exc}")
        raise typer.Exit(2) from None
    body = {"name": name, "default_radius_arcsec": radius, "targets": targets}
    console.print(_call("PUT", f"/watchlists/{name}", body, controller, token))


@watchlist_app.command("list")
def watchlist_list(controller: Controller = None, token: Token = None) -> None:
    console.print(_call("GET", "/watchlists", None, controller, token))


@watchlist_app.command("remove")
def watchlist_remove(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(_call("DELETE", f"/watchlists/{name}", None, controller, token))


@watchmap_app.command("add")
def watchmap_add(
    name: str,
    source: Path,
    kind: Annotated[str, typer.Option(help="moc-json, moc-fits or skymap")] = "moc-fits",
    credible_level: Annotated[float, typer.Option(help="skymap: the credible region kept")] = 0.9,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Upload a region: a MOC (JSON or FITS) or a HEALPix probability map cut at a credible level."""
    import base64
    import json

    try:
        body: dict[str, Any] = {"name": name, "kind": kind, "credible_level": credible_level}
        if kind == "moc-json":
            body["moc"] = json.loads(source.read_text())
        else:
            body["fits_base64"] = base64.b64encode(source.read_bytes()).decode("ascii")
    except (OSError, ValueError) as exc:
        report_error(f"cannot read {source}: {exc}")
        raise typer.Exit(2) from None
    console.print(_call("PUT", f"/watchmaps/{name}", body, controller, token))


@watchmap_app.command("list")
def watchmap_list(controller: Controller = None, token: Token = None) -> None:
    console.print(_call("GET", "/watchmaps", None, controller, token))


@watchmap_app.command("remove")
def watchmap_remove(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(_call("DELETE", f"/watchmaps/{name}", None, controller, token))
