"""Users' watchlists and watchmaps through the controller.

Each is kept in the config of one ingest-stage annotator (``watchlists`` or ``watchmaps``), added to
the stage when the first one arrives. An upload is checked, then goes live in every ingest replica
between two batches: alerts that arrive after are marked. A user token sees and changes its own; an
operator token all of them.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from starling.components.annotators.watch import NAME, WatchTarget, moc_from_upload
from starling.control.state import Principal
from starling.core.spec import ComponentSpec
from starling.errors import ConfigError

if TYPE_CHECKING:
    from starling.control.controller import Controller


class NewWatchlist(BaseModel):
    name: str = Field(pattern=NAME)
    default_radius_arcsec: float = Field(2.0, gt=0, le=3600)
    targets: list[WatchTarget] = Field(min_length=1, max_length=1_000_000)


class NewWatchmap(BaseModel):
    name: str = Field(pattern=NAME)
    kind: Literal["moc-json", "moc-fits", "skymap"] = Field(
        description="a MOC as JSON, a MOC FITS file, or a HEALPix probability map (FITS)"
    )
    moc: dict[str, list[int]] | None = Field(None, description="for moc-json: depth -> NESTED cells")
    fits_base64: str | None = Field(None, description="for moc-fits and skymap: the file, base64")
    credible_level: float = Field(0.9, gt=0, le=1, description="for skymap: the credible region kept")
    description: str = Field("", max_length=2000)


def _refusal(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class _Kept:
    """The entries (lists or maps) of one ingest annotator, seen per owner."""

    def __init__(self, controller: Controller, use: str, key: str) -> None:
        self.controller, self.use, self.key = controller, use, key

    def component(self) -> ComponentSpec | None:
        return next((c for c in self.controller.components("ingest") if c.use == self.use), None)

    def entries(self) -> list[dict[str, Any]]:
        found = self.component()
        return list(found.config.get(self.key, [])) if found else []

    def visible(self, principal: Principal) -> list[dict[str, Any]]:
        return [e for e in self.entries() if principal.role == "operator" or e.get("owner") == principal.user]

    def replace(self, entries: list[dict[str, Any]]) -> int:
        components = self.controller.components("ingest")
        current = self.component()
        updated = ComponentSpec(use=self.use, name=self.use, config={self.key: entries})
        if current is None:
            components = [*components, updated]
        else:
            components = [updated if c is current else c for c in components]
        return self.controller.set_annotators(components).version


def add_watch_routes(
    app: FastAPI, controller: Controller, anyone: Any, refusals: dict[int | str, Any]
) -> None:
    lists = _Kept(controller, "watchlists", "lists")
    maps = _Kept(controller, "watchmaps", "maps")

    def put_entry(kept: _Kept, principal: Principal, entry: dict[str, Any]) -> Any:
        others = [e for e in kept.entries() if e["name"] != entry["name"]]
        existing = next((e for e in kept.entries() if e["name"] == entry["name"]), None)
        if existing is not None and principal.role != "operator" and existing.get("owner") != principal.user:
            return _refusal(409, f"{entry['name']!r} belongs to someone else; choose another name")
        try:
            version = kept.replace(
                [*others, {**entry, "owner": existing["owner"] if existing else principal.user}]
            )
        except ConfigError as exc:
            return _refusal(422, exc.problems)
        return {"name": entry["name"], "version": version, "replaced": existing is not None}

    def delete_entry(kept: _Kept, principal: Principal, name: str) -> Any:
        if not any(e["name"] == name for e in kept.visible(principal)):
            return _refusal(404, f"you have no {kept.key[:-1]} named {name!r}")
        try:
            version = kept.replace([e for e in kept.entries() if e["name"] != name])
        except ConfigError as exc:
            return _refusal(422, exc.problems)
        return {"name": name, "version": version, "deleted": True}

    @app.get("/watchlists", responses=refusals, tags=["watch"])
    def list_watchlists(principal: Principal = anyone) -> list[dict[str, Any]]:
        """Your watchlists (an operator: everyone's), without their targets."""
        return [
            {
                "name": e["name"],
                "owner": e.get("owner"),
                "targets": len(e["targets"]),
                "default_radius_arcsec": e.get("default_radius_arcsec", 2.0),
            }
            for e in lists.visible(principal)
        ]

    @app.put("/watchlists/{name}", responses=refusals, tags=["watch"])
    def put_watchlist(name: str, body: NewWatchlist, principal: Principal = anyone) -> Any:
        """Upload a watchlist, or replace its targets; alerts that arrive after are marked."""
        if body.name != name:
            return _refusal(422, "the name in the path and in the body differ")
        return put_entry(lists, principal, body.model_dump(mode="json"))

    @app.get("/watchlists/{name}", responses=refusals, tags=["watch"])
    def get_watchlist(name: str, principal: Principal = anyone) -> Any:
        found = next((e for e in lists.visible(principal) if e["name"] == name), None)
        return found if found is not None else _refusal(404, f"you have no watchlist named {name!r}")

    @app.delete("/watchlists/{name}", responses=refusals, tags=["watch"])
    def delete_watchlist(name: str, principal: Principal = anyone) -> Any:
        return delete_entry(lists, principal, name)

    @app.get("/watchmaps", responses=refusals, tags=["watch"])
    def list_watchmaps(principal: Principal = anyone) -> list[dict[str, Any]]:
        return [
            {
                "name": e["name"],
                "owner": e.get("owner"),
                "description": e.get("description", ""),
                "cells": sum(len(c) for c in e["moc"].values()),
            }
            for e in maps.visible(principal)
        ]

    @app.put("/watchmaps/{name}", responses=refusals, tags=["watch"])
    def put_watchmap(name: str, body: NewWatchmap, principal: Principal = anyone) -> Any:
        """Upload a region (a MOC, or a probability map and its credible level)."""
        if body.name != name:
            return _refusal(422, "the name in the path and in the body differ")
        try:
            if body.kind == "moc-json":
                if body.moc is None:
                    return _refusal(422, "moc-json needs 'moc'")
                moc = moc_from_upload("moc-json", body.moc)
            else:
                if body.fits_base64 is None:
                    return _refusal(422, f"{body.kind} needs 'fits_base64'")
                moc = moc_from_upload(
                    body.kind, base64.b64decode(body.fits_base64, validate=True), body.credible_level
                )
        except (ValueError, OSError, KeyError, IndexError, binascii.Error, ValidationError) as exc:
            return _refusal(422, f"cannot read the {body.kind}: {exc}")
        entry = {"name": name, "moc": moc, "description": body.description}
        return put_entry(maps, principal, entry)

    @app.delete("/watchmaps/{name}", responses=refusals, tags=["watch"])
    def delete_watchmap(name: str, principal: Principal = anyone) -> Any:
        return delete_entry(maps, principal, name)
