"""ADQL's geometry on the sky, over columns: distances, circles and polygons (ICRS, degrees).

Polygon edges are great circles, as ADQL says. A gnomonic projection about the polygon's centre
maps great circles to straight lines, so a plane point-in-polygon test on the projected points is
exact; points more than 90 degrees from the centre are outside (ADQL polygons are smaller than a
hemisphere).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from astropy.coordinates import angular_separation

Array = npt.NDArray[np.float64]


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
