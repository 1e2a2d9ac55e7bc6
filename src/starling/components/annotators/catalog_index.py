"""A catalogue's positions on disk, sorted by HEALPix cell, searched column-wise.

Built once (``CatalogIndex.build``) into a folder of ``.npy`` files that are memory-mapped when
opened, so a catalogue of millions of rows opens in milliseconds and is shared by every worker
through the page cache, never rebuilt at start.

The cells are NESTED HEALPix cells (``cdshealpix``) at the deepest depth whose cells are still wide
enough that everything within ``max_radius`` of a point lies in the point's cell or one of its eight
neighbours. A batch of positions is searched in one go: their cells and neighbours, the rows of
those cells by binary search in the sorted cell column, then exact distances (chord lengths of unit
vectors, stable at small angles) for all candidates at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import numpy.typing as npt
from cdshealpix import nested

FORMAT_VERSION = 1
# A cell's narrowest width is at least this fraction of its nominal size (sqrt of its area), with
# margin: cells are stretched near the poles and at the corners of the twelve base cells.
_NARROWEST_FRACTION = 0.4


def depth_for_radius(max_radius_arcsec: float) -> int:
    """The deepest HEALPix depth whose cells are wider than the search radius (at most 20)."""
    for depth in range(20, -1, -1):
        nominal_arcsec = math.degrees(math.sqrt(4 * math.pi / (12 * 4**depth))) * 3600
        if _NARROWEST_FRACTION * nominal_arcsec >= max_radius_arcsec:
            return depth
    raise ValueError(
        f"a search radius of {max_radius_arcsec} arcsec is wider than the coarsest HEALPix cells"
    )


def cells_of(ra: npt.ArrayLike, dec: npt.ArrayLike, depth: int) -> npt.NDArray[np.int64]:
    lon = np.asarray(ra, dtype=float) % 360.0
    lat = np.clip(np.asarray(dec, dtype=float), -90.0, 90.0)
    return np.asarray(
        nested.lonlat_to_healpix(lon * u.deg, lat * u.deg, depth, num_threads=1), dtype=np.int64
    )


def unit_vectors(ra: npt.ArrayLike, dec: npt.ArrayLike) -> npt.NDArray[np.float64]:
    ra_r, dec_r = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    cos_dec = np.cos(dec_r)
    return np.stack([cos_dec * np.cos(ra_r), cos_dec * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def chord_for_arcsec(radius_arcsec: float) -> float:
    return 2.0 * math.sin(math.radians(radius_arcsec / 3600.0) / 2.0)


def arcsec_for_chord(chord: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.degrees(2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))) * 3600.0


@dataclass(frozen=True)
class Matches:
    """For each searched position: its nearest row within the radius (-1 if none), the distance in
    arcseconds, and how many rows lie within the radius. ``pairs`` lists every (position, row) pair."""

    nearest: npt.NDArray[np.int64]
    distance_arcsec: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]
    pairs: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


class CatalogIndex:
    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder} holds an index of format {meta.get('format')}, not {FORMAT_VERSION}")
        self.folder = folder
        self.meta: dict[str, Any] = meta
        self.name: str = meta["name"]
        self.depth: int = meta["depth"]
        self.max_radius_arcsec: float = meta["max_radius_arcsec"]
        self.columns: dict[str, str] = meta["columns"]  # carried column -> its type
        self.cells = np.load(folder / "cells.npy", mmap_mode="r")
        self.xyz = np.load(folder / "xyz.npy", mmap_mode="r")
        self.ids = np.load(folder / "ids.npy", mmap_mode="r")
        self._carried = {name: np.load(folder / f"col.{name}.npy", mmap_mode="r") for name in self.columns}

    def __len__(self) -> int:
        return int(self.meta["rows"])

    @staticmethod
    def build(
        folder: Path,
        name: str,
        ra: npt.ArrayLike,
        dec: npt.ArrayLike,
        ids: npt.ArrayLike,
        columns: dict[str, npt.ArrayLike] | None = None,
        max_radius_arcsec: float = 5.0,
    ) -> CatalogIndex:
        ra_array, dec_array = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
        if ra_array.shape != dec_array.shape or ra_array.ndim != 1:
            raise ValueError("ra and dec must be one-dimensional and of one length")
        bad = ~np.isfinite(ra_array) | ~np.isfinite(dec_array) | (np.abs(dec_array) > 90)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} rows have no valid position (first: row {int(np.argmax(bad))})"
            )
        depth = depth_for_radius(max_radius_arcsec)
        cells = cells_of(ra_array, dec_array, depth)
        order = np.argsort(cells, kind="stable")
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "cells.npy", cells[order])
        np.save(folder / "xyz.npy", unit_vectors(ra_array[order], dec_array[order]))
        id_array = np.asarray(ids)
        if id_array.dtype == object:
            id_array = id_array.astype(str)
        np.save(folder / "ids.npy", id_array[order])
        kinds: dict[str, str] = {}
        for column, values in (columns or {}).items():
            array = np.asarray(values)
            if array.dtype == object:
                array = array.astype(str)
            kinds[column] = (
                "string" if array.dtype.kind in "US" else "int" if array.dtype.kind in "iu" else "float"
            )
            np.save(folder / f"col.{column}.npy", array[order])
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "rows": int(ra_array.size),
            "depth": depth,
            "max_radius_arcsec": max_radius_arcsec,
            "columns": kinds,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))  # last: a folder without it is no index
        return CatalogIndex(folder)

    def search(self, ra: npt.ArrayLike, dec: npt.ArrayLike, radius_arcsec: float) -> Matches:
        if radius_arcsec > self.max_radius_arcsec:
            raise ValueError(
                f"{self.name} is indexed for radii up to {self.max_radius_arcsec} arcsec, not {radius_arcsec}"
            )
        ra_array, dec_array = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
        n = ra_array.size
        # A position that is no position (NaN, an infinity, |dec| > 90) matches nothing; it is searched
        # at (0, 0) so the HEALPix code, which refuses such latitudes, never sees it.
        valid = np.isfinite(ra_array) & np.isfinite(dec_array) & (np.abs(dec_array) <= 90.0)
        if not valid.all():
            ra_array, dec_array = np.where(valid, ra_array, 0.0), np.where(valid, dec_array, 0.0)
        neighbourhood = nested.neighbours(
            cells_of(ra_array, dec_array, self.depth), self.depth, num_threads=1
        )
        neighbourhood = np.asarray(neighbourhood, dtype=np.int64).reshape(n, -1)
        starts = np.searchsorted(self.cells, neighbourhood, side="left")
        ends = np.searchsorted(self.cells, neighbourhood, side="right")
        ends = np.where(neighbourhood < 0, starts, ends)  # a missing neighbour (-1) holds nothing
        lengths = (ends - starts).ravel()
        total = int(lengths.sum())
        owner = np.repeat(np.repeat(np.arange(n), neighbourhood.shape[1]), lengths)
        # Row numbers of every candidate: each range start, then 0, 1, 2 ... within the range.
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = np.repeat(starts.ravel(), lengths) + offsets
        points = unit_vectors(ra_array, dec_array)
        difference = np.asarray(self.xyz[rows]) - points[owner]
        chord = np.sqrt(np.einsum("ij,ij->i", difference, difference))
        inside = (chord <= chord_for_arcsec(radius_arcsec)) & valid[owner]
        owner, rows, chord = owner[inside], rows[inside], chord[inside]
        count = np.bincount(owner, minlength=n).astype(np.int64)
        nearest = np.full(n, -1, dtype=np.int64)
        distance = np.full(n, np.nan)
        if owner.size:
            by_distance = np.lexsort((chord, owner))  # for each position, its nearest first
            first = by_distance[np.r_[True, owner[by_distance][1:] != owner[by_distance][:-1]]]
            nearest[owner[first]] = rows[first]
            distance[owner[first]] = arcsec_for_chord(chord[first])
        return Matches(nearest, distance, count, (owner, rows, arcsec_for_chord(chord)))

    def row(self, index: int) -> dict[str, Any]:
        """The id and carried columns of one row, as plain Python values (a NaN in the catalogue: None)."""
        found: dict[str, Any] = {"id": self.ids[index].item()}
        for name, values in self._carried.items():
            value = values[index].item()
            found[name] = None if isinstance(value, float) and not math.isfinite(value) else value
        return found


def read_catalog_table(source: Path) -> Any:
    """A catalogue file as an astropy Table: CSV or FITS (astropy), or Parquet (pyarrow, column by column)."""
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
