"""Users' watchlists and watchmaps through the controller.

An upload is checked, then goes live in every ingest replica between two batches: alerts that arrive
after are marked. A user token sees and changes its own; an operator token all of them. A name that
belongs to someone else is refused (409) rather than taken over. Each is read with an ``ETag``; a
replacement or removal sent with it as ``If-Match`` is refused (412) if it changed meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, ValidationError

from starling.components.annotators.watch import NAME, Watchlist, WatchTarget, moc_from_upload
from starling.control.api.auth import ANYONE, Anyone
from starling.control.api.common import (
    AUTH_RESPONSES,
    REFUSED,
    IfMatch,
    Responses,
    check_if_match,
    config_refused,
    entity_tag,
    problem,
    refuse,
)
from starling.control.api.deps import Control
from starling.control.quotas import over_quota
from starling.control.tokens import Principal
from starling.control.user_watch import WatchEntries, read_by_others, watchlists, watchmaps
from starling.core.bodies import items
from starling.core.stages import annotating_stage
from starling.errors import ConfigError


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


class WatchlistSummary(BaseModel):
    name: str
    owner: str | None
    targets: int = Field(description="how many targets it holds")
    default_radius_arcsec: float


class WatchmapSummary(BaseModel):
    name: str
    owner: str | None
    description: str
    cells: int = Field(description="how many MOC cells the region has, over every depth")


class Watchmap(BaseModel):
    name: str
    owner: str | None = None
    description: str = ""
    moc: dict[str, list[int]] = Field(description="the region: depth -> NESTED cells")


class WatchPut(BaseModel):
    name: str
    version: int = Field(description="the desired pipeline's version that carries the change")
    replaced: bool = Field(description="true if it replaced one of the same name")
    live: bool = Field(description="every replica of the ingest stage applied it within 15 s")


class WatchDeleted(BaseModel):
    name: str
    version: int
    deleted: bool


def _lists(controller: Control) -> WatchEntries:
    return watchlists(controller)


def _maps(controller: Control) -> WatchEntries:
    return watchmaps(controller)


Lists = Annotated[WatchEntries, Depends(_lists)]
Maps = Annotated[WatchEntries, Depends(_maps)]
PUT_RESPONSES = {**REFUSED, 409: problem("the name belongs to someone else")}
NOT_YOURS = {**REFUSED, 404: problem("you have none of that name")}
READ: Responses = {**NOT_YOURS, 503: problem("its stored contents cannot be read now")}
STALE: Responses = {412: problem("it changed since you read it (If-Match)")}

router = APIRouter(dependencies=ANYONE, responses=AUTH_RESPONSES, tags=["watch"])


def _check_quotas(kept: WatchEntries, who: Principal, entries: list[dict[str, Any]]) -> None:
    """``entries``, as they would be after the change, within ``who``'s quotas (an operator has none)."""
    if who.role == "operator":
        return
    quotas = kept.controller.quotas
    mine = [e for e in entries if e.get("owner") == who.user]
    if kept.key == "maps":
        if len(mine) > quotas.watchmaps_per_user:
            refuse(403, over_quota("watchmaps", quotas.watchmaps_per_user))
        return
    if len(mine) > quotas.watchlists_per_user:
        refuse(403, over_quota("watchlists", quotas.watchlists_per_user))
    if max((items(e["targets"]) for e in mine), default=0) > quotas.targets_per_list:
        refuse(403, over_quota("targets in one watchlist", quotas.targets_per_list))
    if sum(items(e["targets"]) for e in mine) > quotas.targets_per_user:
        refuse(403, over_quota("targets over all your watchlists", quotas.targets_per_user))


def _put(kept: WatchEntries, who: Principal, entry: dict[str, Any], if_match: str | None = None) -> WatchPut:
    replaced = False

    def put(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal replaced
        existing = next((e for e in entries if e["name"] == entry["name"]), None)
        taken = existing is not None and who.role != "operator" and existing.get("owner") != who.user
        # Filters read names without regard to case: a name that differs from another only in case is
        # that other one's; a free name another user's filter reads is kept for that user.
        if any(e["name"] != entry["name"] and e["name"].lower() == entry["name"].lower() for e in entries):
            refuse(409, f"{entry['name']!r} differs only in case from a name in use; choose another name")
        kept_for_another = existing is None and read_by_others(kept.controller, who, kept.use, entry["name"])
        if taken or kept_for_another:
            refuse(409, f"{entry['name']!r} belongs to someone else; choose another name")
        check_if_match(if_match, existing, kept.noun)
        replaced = existing is not None
        owner = existing["owner"] if existing else who.user
        changed = [*(e for e in entries if e["name"] != entry["name"]), {**entry, "owner": owner}]
        _check_quotas(kept, who, changed)
        return changed

    with config_refused():
        version = kept.edit(put)
    live = kept.controller.wait_live(version, annotating_stage(kept.controller.desired.spec))
    return WatchPut(name=entry["name"], version=version, replaced=replaced, live=live)


def _delete(kept: WatchEntries, who: Principal, name: str, if_match: str | None = None) -> WatchDeleted:
    def delete(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = next(
            (
                e
                for e in entries
                if e["name"] == name and (who.role == "operator" or e.get("owner") == who.user)
            ),
            None,
        )
        if found is None:
            refuse(404, f"you have no {kept.noun} named {name!r}")
        check_if_match(if_match, found, kept.noun)
        return [e for e in entries if e["name"] != name]

    with config_refused():
        version = kept.edit(delete)
    return WatchDeleted(name=name, version=version, deleted=True)


def _same_name(path_name: str, body_name: str) -> None:
    if body_name != path_name:
        refuse(422, "the name in the path and in the body differ")


@router.get("/watchlists")
def list_watchlists(lists: Lists, who: Anyone) -> list[WatchlistSummary]:
    """Your watchlists (an operator: everyone's), without their targets."""
    return [
        WatchlistSummary(
            name=e["name"],
            owner=e.get("owner"),
            targets=items(e["targets"]),
            default_radius_arcsec=e.get("default_radius_arcsec", 2.0),
        )
        for e in lists.visible(who)
    ]


@router.put("/watchlists/{name}", responses={**PUT_RESPONSES, **STALE})
def put_watchlist(
    name: str, body: NewWatchlist, lists: Lists, who: Anyone, if_match: IfMatch = None
) -> WatchPut:
    """Upload a watchlist, or replace its targets; alerts that arrive after are marked."""
    _same_name(name, body.name)
    return _put(lists, who, body.model_dump(mode="json"), if_match)


def _read(kept: WatchEntries, who: Principal, name: str, response: Response) -> dict[str, Any]:
    found = kept.find(who, name)
    if found is None:
        refuse(404, f"you have no {kept.noun} named {name!r}")
    response.headers["ETag"] = entity_tag(found)
    try:
        return kept.whole(found)
    except (
        ConfigError
    ) as exc:  # its stored body is gone (a controller database made anew): not the user's doing
        refuse(503, f"the {kept.noun}'s contents cannot be read now: {exc}")


# The entry as kept: only the fields it holds (a hand-written pipeline may leave defaults out).
@router.get("/watchlists/{name}", responses=READ, response_model_exclude_unset=True)
def get_watchlist(name: str, lists: Lists, who: Anyone, response: Response) -> Watchlist:
    """One of your watchlists with its targets, and an ``ETag`` to send back as ``If-Match``."""
    return Watchlist.model_validate(_read(lists, who, name, response))


@router.delete("/watchlists/{name}", responses={**NOT_YOURS, **STALE})
def delete_watchlist(name: str, lists: Lists, who: Anyone, if_match: IfMatch = None) -> WatchDeleted:
    return _delete(lists, who, name, if_match)


@router.get("/watchmaps")
def list_watchmaps(maps: Maps, who: Anyone) -> list[WatchmapSummary]:
    return [
        WatchmapSummary(
            name=e["name"],
            owner=e.get("owner"),
            description=e.get("description", ""),
            cells=items(e["moc"]),
        )
        for e in maps.visible(who)
    ]


def _region(body: NewWatchmap) -> dict[str, list[int]]:
    """The uploaded region as a MOC in JSON form; 422 saying why it cannot be read."""
    try:
        if body.kind == "moc-json":
            if body.moc is None:
                refuse(422, "moc-json needs 'moc'")
            return moc_from_upload("moc-json", body.moc)
        if body.fits_base64 is None:
            refuse(422, f"{body.kind} needs 'fits_base64'")
        fits = base64.b64decode(body.fits_base64, validate=True)
        return moc_from_upload(body.kind, fits, body.credible_level)
    except (ValueError, OSError, KeyError, IndexError, binascii.Error, ValidationError) as exc:
        refuse(422, f"cannot read the {body.kind}: {exc}")


@router.put("/watchmaps/{name}", responses={**PUT_RESPONSES, **STALE})
def put_watchmap(name: str, body: NewWatchmap, maps: Maps, who: Anyone, if_match: IfMatch = None) -> WatchPut:
    """Upload a region (a MOC, or a probability map and its credible level)."""
    _same_name(name, body.name)
    region = _region(body)
    limit = maps.controller.quotas.cells_per_map
    if who.role != "operator" and sum(len(cells) for cells in region.values()) > limit:
        refuse(403, over_quota("cells in one watchmap", limit))
    return _put(maps, who, {"name": name, "moc": region, "description": body.description}, if_match)


@router.get("/watchmaps/{name}", responses=READ)
def get_watchmap(name: str, maps: Maps, who: Anyone, response: Response) -> Watchmap:
    """One of your watchmaps with its region (a MOC in JSON form), and an ``ETag``."""
    return Watchmap.model_validate(_read(maps, who, name, response))


@router.delete("/watchmaps/{name}", responses={**NOT_YOURS, **STALE})
def delete_watchmap(name: str, maps: Maps, who: Anyone, if_match: IfMatch = None) -> WatchDeleted:
    return _delete(maps, who, name, if_match)
