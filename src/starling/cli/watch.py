"""``starling watchlist`` and ``starling watchmap``: your targets and sky regions, through the controller."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from starling.cli.options import Controller, Token, ask
from starling.cli.terminal import console, report_error

watchlist_app = typer.Typer(no_args_is_help=True, help="Your watchlists of targets (through the controller).")
watchmap_app = typer.Typer(no_args_is_help=True, help="Your watchmaps: sky regions (through the controller).")


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
    console.print(ask(controller, token, lambda c: c.put_watched("watchlists", name, body)))


@watchlist_app.command("list")
def watchlist_list(controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.watched("watchlists")))


@watchlist_app.command("remove")
def watchlist_remove(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.delete_watched("watchlists", name)))


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
    console.print(ask(controller, token, lambda c: c.put_watched("watchmaps", name, body)))


@watchmap_app.command("list")
def watchmap_list(controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.watched("watchmaps")))


@watchmap_app.command("remove")
def watchmap_remove(name: str, controller: Controller = None, token: Token = None) -> None:
    console.print(ask(controller, token, lambda c: c.delete_watched("watchmaps", name)))
