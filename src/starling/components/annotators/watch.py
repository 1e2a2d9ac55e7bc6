"""Users' watchlists and watchmaps: marking the alerts that fall on targets or regions they care about.

- ``watchlists``: lists of targets (name, ra, dec, an optional radius each). An alert within a target's
  radius is marked ``watchlists.<list>.target`` (the nearest such target), ``.dist_arcsec``,
  ``.count`` and ``.owner``. Lists are searched with the crossmatch index, built in memory at setup.
- ``watchmaps``: sky regions as MOCs (from a MOC's FITS or JSON, or from a HEALPix probability map
  cut at a credible level, such as a gravitational-wave skymap; ``mocpy``). An alert inside is
  marked ``watchmaps.<map>.inside`` = 1 and ``.owner``.

Each mark names its list's owner: the store keeps a user's marks in a row of that user's, which no other
user reads (``starling.store.access``).

Both keep their lists and maps in their config, so the controller changes them while the stream
runs (between two batches), and every replica gets the same ones without a shared disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from mocpy import MOC
from pydantic import BaseModel, ConfigDict, Field, field_validator

from starling.alert.model import Alert
from starling.components.annotators.catalog_index import (
    CatalogIndex,
    arcsec_for_chord,
    chord_for_arcsec,
    unit_vectors,
)
from starling.core.component import AnnotationField, Annotator, ComponentConfig, RunContext

NAME = r"^[A-Za-z0-9_-]{1,64}$"


class WatchTarget(BaseModel):
    # Strict: a position is a number, never a boolean or a string read as one.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    ra: float = Field(ge=-360, le=720, description="degrees (ICRS); taken modulo 360")
    dec: float = Field(ge=-90, le=90, description="degrees (ICRS)")
    radius_arcsec: float | None = Field(None, gt=0, le=3600, description="default: the list's")


class Watchlist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    owner: str = "operator"
    default_radius_arcsec: float = Field(2.0, gt=0, le=3600)
    targets: list[WatchTarget] = Field(min_length=1, max_length=1_000_000)


class WatchlistsConfig(ComponentConfig):
    lists: list[Watchlist] = Field(default_factory=list)

    @field_validator("lists")
    @classmethod
    def _unique(cls, lists: list[Watchlist]) -> list[Watchlist]:
        names = [w.name for w in lists]
        if len(set(names)) != len(names):
            raise ValueError(f"watchlist names must be unique: {names}")
        return lists


class Watchlists(Annotator[WatchlistsConfig]):
    Config: ClassVar[type[ComponentConfig]] = WatchlistsConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "*.target": AnnotationField("string", "", "the nearest target whose radius holds the alert"),
        "*.dist_arcsec": AnnotationField("float", "arcsec", "distance to that target"),
        "*.count": AnnotationField("int", "", "targets of the list whose radius holds the alert"),
        "*.owner": AnnotationField(
            "string", "", "whose list it is (a user's hits are stored as theirs alone)"
        ),
    }

    def setup(self, context: RunContext) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="starling-watchlists-")
        self.indexes: dict[str, tuple[Watchlist, CatalogIndex, np.ndarray]] = {}
        for watchlist in self.config.lists:
            radii = np.array([t.radius_arcsec or watchlist.default_radius_arcsec for t in watchlist.targets])
            index = CatalogIndex.build(
                Path(self._folder.name) / watchlist.name,
                watchlist.name,
                [t.ra % 360.0 for t in watchlist.targets],
                [t.dec for t in watchlist.targets],
                np.arange(len(watchlist.targets)),  # the target's position in the list
                max_radius_arcsec=float(radii.max()),
            )
            self.indexes[watchlist.name] = (watchlist, index, radii)

    def annotate(self, alerts: Sequence[Alert]) -> None:
        if not alerts or not self.config.lists:
            return
        ra = np.fromiter((a.ra for a in alerts), dtype=float, count=len(alerts))
        dec = np.fromiter((a.dec for a in alerts), dtype=float, count=len(alerts))
        found: list[dict[str, Any]] = [{} for _ in alerts]
        for name, (watchlist, index, radii) in self.indexes.items():
            owner, rows, distance = index.search(ra, dec, float(radii.max())).pairs
            targets = np.asarray(index.ids)[rows]
            keep = distance <= radii[targets]  # each target's own radius
            owner, targets, distance = owner[keep], targets[keep], distance[keep]
            if owner.size == 0:
                continue
            counts = np.bincount(owner, minlength=len(alerts))
            by_distance = np.lexsort((distance, owner))
            first = by_distance[np.r_[True, owner[by_distance][1:] != owner[by_distance][:-1]]]
            for position, target, dist in zip(owner[first], targets[first], distance[first], strict=True):
                found[int(position)][name] = {
                    "target": watchlist.targets[int(target)].name,
                    "dist_arcsec": float(dist),
                    "count": int(counts[position]),
                    "owner": watchlist.owner,
                }
        for alert, marks in zip(alerts, found, strict=True):
            if marks:
                alert.annotations[self.name] = marks

    def close(self) -> None:
        folder = getattr(self, "_folder", None)
        if folder is not None:
            folder.cleanup()


class Watchmap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    owner: str = "operator"
    moc: dict[str, list[int]] = Field(description="the region as a MOC in JSON form: depth -> NESTED cells")
    description: str = ""

    @field_validator("moc")
    @classmethod
    def _readable(cls, moc: dict[str, list[int]]) -> dict[str, list[int]]:
        return checked_moc(moc)


def checked_moc(moc: dict[str, Any]) -> dict[str, list[int]]:
    """A MOC in JSON form, checked: depths 0 to 29, each with cells that exist at that depth."""
    if not moc:
        raise ValueError("the MOC is empty")
    for depth, cells in moc.items():
        if not (isinstance(depth, str) and depth.isdigit() and int(depth) <= 29):
            raise ValueError(f"{depth!r} is not a MOC depth (0 to 29)")
        if not isinstance(cells, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in cells
        ):
            raise ValueError(f"the cells of depth {depth} must be whole numbers")
        if any(c < 0 or c >= 12 * 4 ** int(depth) for c in cells):
            raise ValueError(f"a cell of depth {depth} is out of range")
    try:
        MOC.from_json(moc)
    except Exception as exc:  # mocpy's own refusal
        raise ValueError(f"not a MOC: {exc}") from None
    return {str(d): list(c) for d, c in moc.items()}


class WatchmapsConfig(ComponentConfig):
    maps: list[Watchmap] = Field(default_factory=list)


class Watchmaps(Annotator[WatchmapsConfig]):
    Config: ClassVar[type[ComponentConfig]] = WatchmapsConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "*.inside": AnnotationField("int", "", "1 when the alert lies in the region"),
        "*.owner": AnnotationField(
            "string", "", "whose region it is (a user's hits are stored as theirs alone)"
        ),
    }

    def setup(self, context: RunContext) -> None:
        self.mocs = {m.name: MOC.from_json(m.moc) for m in self.config.maps}
        self.owners = {m.name: m.owner for m in self.config.maps}

    def annotate(self, alerts: Sequence[Alert]) -> None:
        if not alerts or not self.mocs:
            return
        ra = np.fromiter((a.ra for a in alerts), dtype=float, count=len(alerts))
        dec = np.fromiter((a.dec for a in alerts), dtype=float, count=len(alerts))
        # A position that is no position (NaN, an infinity, |dec| > 90) lies in no region.
        valid = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
        lon, lat = np.where(valid, ra, 0.0) % 360.0 * u.deg, np.where(valid, dec, 0.0) * u.deg
        inside = {name: moc.contains_lonlat(lon, lat) & valid for name, moc in self.mocs.items()}
        for position, alert in enumerate(alerts):
            marks = {
                name: {"inside": 1, "owner": self.owners[name]}
                for name, found in inside.items()
                if found[position]
            }
            if marks:
                alert.annotations[self.name] = marks


def moc_from_upload(
    kind: str, content: bytes | dict[str, Any], credible_level: float = 0.9, max_depth: int = 10
) -> dict[str, list[int]]:
    """A MOC in JSON form from what a user uploads: a MOC (JSON or FITS), or a HEALPix probability map
    (FITS, multi-order or flat) cut at ``credible_level`` (the smallest region holding that probability)."""
    if kind == "moc-json":
        assert isinstance(content, dict)
        moc = MOC.from_json(checked_moc(content))
    else:
        assert isinstance(content, bytes)
        with tempfile.NamedTemporaryFile(suffix=".fits") as handle:
            handle.write(content)
            handle.flush()
            if kind == "moc-fits":
                moc = MOC.from_fits(handle.name)
            elif kind == "skymap":
                moc = _skymap_moc(Path(handle.name), credible_level, max_depth)
            else:
                raise ValueError(f"unknown kind {kind!r}: moc-json, moc-fits or skymap")
    serialized = moc.serialize(format="json")
    return {str(depth): [int(c) for c in cells] for depth, cells in serialized.items() if cells}


def _skymap_moc(path: Path, credible_level: float, max_depth: int) -> MOC:
    from astropy.io import fits

    with fits.open(path) as hdus:
        table = hdus[1]
        names = [n.upper() for n in table.columns.names]
        if "UNIQ" in names:  # a multi-order map (as LIGO/Virgo/KAGRA distribute them)
            return MOC.from_multiordermap_fits_file(path, cumul_from=0.0, cumul_to=credible_level)
        ordering = str(table.header.get("ORDERING", "RING")).upper()
        probability = np.asarray(table.data.field(0), dtype=float).ravel()
    depth = int(np.rint(np.log2(np.sqrt(probability.size / 12))))
    if ordering != "NESTED":
        from cdshealpix import nested, ring

        lon, lat = ring.healpix_to_lonlat(np.arange(probability.size), 2**depth)
        cells = nested.lonlat_to_healpix(lon, lat, depth)
        reordered = np.empty_like(probability)
        reordered[np.asarray(cells)] = probability
        probability = reordered
    uniq = 4 * 4**depth + np.arange(probability.size)
    return MOC.from_valued_healpix_cells(
        uniq, probability, max_depth=min(max_depth, depth), cumul_from=0.0, cumul_to=credible_level
    )


def distance_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (for tests and tools), by the same chord as the index."""
    difference = unit_vectors(ra1, dec1) - unit_vectors(ra2, dec2)
    return float(arcsec_for_chord(np.sqrt(np.sum(difference * difference))))


__all__ = ["Watchlists", "Watchmaps", "chord_for_arcsec", "moc_from_upload"]
