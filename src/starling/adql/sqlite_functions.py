"""The functions a SQLite connection needs to run translated ADQL (``query.py``): the sky geometry,
with the same meaning the stream filters give it (``geometry.py``), and what SQLite lacks of ADQL's maths.

Scalar, row by row: SQLite calls them once per row the rest of the WHERE clause lets through (the
translation puts a declination band in front of every cone).
"""

from __future__ import annotations

import math
import random
import sqlite3

import numpy as np

from starling.adql.geometry import polygon_contains


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    ra_r, dec_r = math.radians(ra), math.radians(dec)
    return (math.cos(dec_r) * math.cos(ra_r), math.cos(dec_r) * math.sin(ra_r), math.sin(dec_r))


def distance(ra1: float | None, dec1: float | None, ra2: float | None, dec2: float | None) -> float | None:
    """Degrees between two points (the chord, turned into an angle: stable at small separations)."""
    if ra1 is None or dec1 is None or ra2 is None or dec2 is None:
        return None
    a, b = _unit(ra1, dec1), _unit(ra2, dec2)
    chord = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    return math.degrees(2.0 * math.asin(min(1.0, chord / 2.0)))


def in_circle(
    ra: float | None,
    dec: float | None,
    centre_ra: float | None,
    centre_dec: float | None,
    radius: float | None,
) -> int | None:
    if ra is None or dec is None or centre_ra is None or centre_dec is None or radius is None:
        return None
    separation = distance(ra, dec, centre_ra, centre_dec)
    return int(separation is not None and separation <= radius)


def in_polygon(ra: float | None, dec: float | None, *vertices: float) -> int | None:
    if ra is None or dec is None:
        return None
    inside = polygon_contains(np.array([ra]), np.array([dec]), list(vertices[0::2]), list(vertices[1::2]))
    return int(inside[0])


def truncate(value: float | None, decimals: int | None) -> float | None:
    if value is None or decimals is None:
        return None
    scale = 10.0 ** int(decimals)
    return math.trunc(value * scale) / scale


def cot(value: float | None) -> float | None:
    if value is None:
        return None
    tangent = math.tan(value)
    return None if tangent == 0 else 1.0 / tangent


def register(connection: sqlite3.Connection) -> None:
    """Make the translated ADQL's functions known to ``connection``."""
    connection.create_function("starling_distance", 4, distance, deterministic=True)
    connection.create_function("starling_circle", 5, in_circle, deterministic=True)
    connection.create_function("starling_polygon", -1, in_polygon, deterministic=True)
    connection.create_function("starling_truncate", 2, truncate, deterministic=True)
    connection.create_function("starling_cot", 1, cot, deterministic=True)
    connection.create_function("starling_rand", 0, random.random)
