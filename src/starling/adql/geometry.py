"""ADQL's geometry on the sky, over columns: distances, circles and polygons (ICRS, degrees).

Polygon edges are great circles, as ADQL says. A gnomonic projection about the polygon's centre
maps great circles to straight lines, so a plane point-in-polygon test on the projected points is
exact; points more than 90 degrees from the centre are outside (ADQL polygons are smaller than a
hemisphere).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.coordinates import angular_separation

from starling.adql.values import Vec, as_float, number_column

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Point:
    ra: Vec
    dec: Vec


@dataclass(frozen=True, slots=True)
class Circle:
    centre: Point
    radius: Vec


@dataclass(frozen=True, slots=True)
class Polygon:
    ra: list[float]
    dec: list[float]


def distance_deg(ra1: Array, dec1: Array, ra2: Array, dec2: Array) -> Array:
    """Great-circle distance in degrees (Vincenty's formula, exact at every separation)."""
    separation = angular_separation(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2))
    return np.asarray(np.degrees(separation), dtype=float)


def unit_vectors(ra: Array, dec: Array) -> Array:
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def _gnomonic(points: Array, centre: Array) -> tuple[Array, Array, Array]:
    """Tangent-plane coordinates of unit vectors about ``centre``, and cos(angle to the centre)."""
    east = np.cross([0.0, 0.0, 1.0], centre)
    if np.linalg.norm(east) < 1e-12:  # the centre is a pole: any east will do
        east = np.array([0.0, 1.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)
    cos_angle = points @ centre
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (points @ east) / cos_angle
        y = (points @ north) / cos_angle
    return x, y, cos_angle


def polygon_contains(
    ra: Array, dec: Array, vertex_ra: list[float], vertex_dec: list[float]
) -> npt.NDArray[np.bool_]:
    vertices = unit_vectors(np.asarray(vertex_ra, dtype=float), np.asarray(vertex_dec, dtype=float))
    centre = vertices.sum(axis=0)
    centre /= np.linalg.norm(centre)
    px, py, cos_angle = _gnomonic(
        unit_vectors(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)), centre
    )
    vx, vy, _ = _gnomonic(vertices, centre)
    inside = np.zeros(np.shape(px), dtype=bool)
    count = len(vx)
    for i in range(count):  # ray casting: flip at each edge the horizontal ray from the point crosses
        x1, y1, x2, y2 = vx[i], vy[i], vx[(i + 1) % count], vy[(i + 1) % count]
        if y1 == y2:
            continue
        straddles = (y1 > py) != (y2 > py)
        crossing_x = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= straddles & (px < crossing_x)
    return inside & (cos_angle > 0)


def polygon_dec_range(vertex_ra: list[float], vertex_dec: list[float]) -> tuple[float, float]:
    """The declinations a spherical polygon spans: its vertices', the extremes its great-circle edges
    reach between them (an edge bulges towards a pole), and a pole it holds. What a declination index
    may be asked for before the exact test."""
    vertices = unit_vectors(np.asarray(vertex_ra, dtype=float), np.asarray(vertex_dec, dtype=float))
    centre = vertices.sum(axis=0)
    if np.linalg.norm(centre) < 1e-12 or np.any(vertices @ (centre / np.linalg.norm(centre)) <= 0):
        return -90.0, 90.0  # a vertex a quarter of the sky from the rest: no band is sure to hold it
    decs = list(np.asarray(vertex_dec, dtype=float))
    count = len(vertices)
    for i in range(count):
        a, b = vertices[i], vertices[(i + 1) % count]
        normal = np.cross(a, b)
        length = np.linalg.norm(normal)
        if length < 1e-15:
            continue
        normal /= length
        # The great circle's highest point: the pole's direction with its part along the normal taken out.
        top = np.array([0.0, 0.0, 1.0]) - normal[2] * normal
        if np.linalg.norm(top) < 1e-15:
            continue  # the edge runs along the equator: no extreme between its ends
        top /= np.linalg.norm(top)
        arc = np.arccos(np.clip(a @ b, -1, 1))
        for extreme in (top, -top):
            on_arc = np.arccos(np.clip(a @ extreme, -1, 1)) + np.arccos(np.clip(extreme @ b, -1, 1))
            if abs(on_arc - arc) < 1e-12:
                decs.append(float(np.degrees(np.arcsin(np.clip(extreme[2], -1, 1)))))
    low, high = min(decs), max(decs)
    poles = polygon_contains(np.array([0.0, 0.0]), np.array([90.0, -90.0]), list(vertex_ra), list(vertex_dec))
    pad = 1e-9  # degrees: rounding in the extremes' arithmetic never costs a point on the edge
    return (-90.0 if poles[1] else float(low) - pad), (90.0 if poles[0] else float(high) + pad)


# -- over the columns of a batch (``columns`` may keep a memo for the batch) --------------------------


def _point_vectors(columns: Any, point: Point) -> Any:
    """The point's unit vectors, computed once per batch for the alerts' own positions."""
    memo: dict[Any, Any] | None = getattr(columns, "memo", None)
    key = ("unit", id(point.ra.values), id(point.dec.values))
    if memo is not None and key in memo:
        return memo[key][0]
    vectors = unit_vectors(as_float(point.ra.values), as_float(point.dec.values))
    if memo is not None:  # the arrays are kept with the key, so their ids stay theirs for the batch
        memo[key] = (vectors, point.ra.values, point.dec.values)
    return vectors


def _chord(columns: Any, p: Point, q: Point) -> Any:
    """The straight-line distance between the points on the unit sphere (stable at small angles)."""
    return _chord_between(_point_vectors(columns, p), _point_vectors(columns, q))


def _chord_between(a: Any, b: Any) -> Any:
    """The chord between unit vectors (..., 3), broadcast against each other.

    Summed one axis at a time into one buffer: k cones over n alerts then take two (k, n) arrays, not a
    (k, n, 3) one (3x faster for 125 cones over 500 alerts)."""
    difference = np.subtract(a[..., 0], b[..., 0])
    if np.ndim(difference) == 0:  # two constants
        whole = a - b
        return np.sqrt(np.einsum("...i,...i->...", whole, whole))
    total = difference * difference
    for axis in (1, 2):
        np.subtract(a[..., axis], b[..., axis], out=difference)
        np.multiply(difference, difference, out=difference)
        total += difference
    return np.sqrt(total, out=total)


def chord_degrees(chord: Any) -> Any:
    """The angle a chord subtends, in degrees (DISTANCE's value)."""
    return np.degrees(2.0 * np.arcsin(np.minimum(1.0, chord / 2.0)))


def degrees_chord(degrees: Any) -> Any:
    """The chord of an angle in degrees, 180 at most; a negative angle gives a negative chord (nothing is
    that close)."""
    return 2.0 * np.sin(np.radians(np.minimum(as_float(degrees), 180.0)) / 2.0)


# Dot products this close to a threshold are decided by the chord itself: the rounding of a matrix
# product of unit vectors (a few 1e-16) is far inside it, so every other pair is decided the same way.
_UNSURE = 1e-12


def _dot(a: Any, b: Any) -> Any:
    """a.b over the grid of k centres by n alerts, as one matrix product; None where the shapes are
    not those of a batch's (n, 3) vectors against (k, 1, 3) ones or one (3,)."""
    for x, y in ((a, b), (b, a)):
        if np.ndim(x) == 2 and np.ndim(y) == 3 and y.shape[1] == 1:
            return y[:, 0, :] @ x.T
        if np.ndim(x) == 2 and np.ndim(y) == 1:
            return x @ y
    return None


Pick = Callable[[Any], Any]  # a column's values at the pairs being decided (all of them, or some)


def near(
    columns: Any, p: Point, q: Point, limit: Any, decide: Callable[[Any, Pick], Any]
) -> npt.NDArray[np.bool_]:
    """Where p and q are about ``limit`` (a chord, negative: never) apart or closer; ``decide`` says which.

    One matrix product judges k cones over n alerts: each pair's dot product against 1 - limit**2 / 2, no
    (k, n) chord, no arcsin. The pairs whose dot product is within rounding of that bound are decided by
    ``decide``, given their chords (computed as ``_chord`` does) and how to pick a column's values at
    them; it decides every pair where the shapes allow no matrix product. The result is the chord's, to
    the bit."""
    a, b = _point_vectors(columns, p), _point_vectors(columns, q)
    dot = _dot(a, b)
    if dot is None:
        return np.asarray(decide(_chord_between(a, b), lambda values: values), dtype=bool)
    offset = dot - np.where(limit >= 0, 1.0 - limit * limit / 2.0, 2.0)
    inside = np.asarray(offset > _UNSURE)
    unsure = np.abs(offset) <= _UNSURE
    if unsure.any():
        where = np.nonzero(unsure)

        def pick(values: Any) -> Any:
            return np.broadcast_to(values, unsure.shape)[where] if np.ndim(values) else values

        pa, pb = (np.broadcast_to(v, (*unsure.shape, 3))[where] for v in (a, b))
        inside[where] = decide(_chord_between(pa, pb), pick)
    return inside


def distance(columns: Any, p: Point, q: Point) -> Vec:
    """ADQL's DISTANCE, in degrees."""
    return number_column(
        chord_degrees(_chord(columns, p, q)),
        p.ra.null | p.dec.null | q.ra.null | q.dec.null,
    )


def contains(columns: Any, point: Point, region: Circle | Polygon) -> Vec:
    """ADQL's CONTAINS: 1 where the point is in the region, else 0."""
    null = point.ra.null | point.dec.null
    if isinstance(region, Circle):
        # Inside when the chord to the centre is at most the chord of the radius: no arcsin per alert.
        limit = degrees_chord(region.radius.values)
        inside = near(columns, point, region.centre, limit, lambda chord, pick: chord <= pick(limit))
        null = null | region.centre.ra.null | region.centre.dec.null | region.radius.null
    else:
        inside = polygon_contains(
            as_float(point.ra.values), as_float(point.dec.values), region.ra, region.dec
        )
    return Vec(np.asarray(inside).astype(np.int64), null, "number")
