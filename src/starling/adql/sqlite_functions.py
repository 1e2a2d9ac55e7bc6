"""The functions a SQLite connection needs to run translated ADQL (``query.py``): the sky geometry,
with the same meaning the stream filters give it (``geometry.py``), what SQLite lacks of ADQL's maths,
and where SQLite's own functions mean otherwise than the filters: its ``%`` casts doubles to integers,
its ``EXP`` and ``POWER`` give infinities (NULL in a filter), its ``ROUND`` rounds the decimal text,
its ``LIKE`` ignores the case of ASCII letters (a filter's does not) and its ``LOWER``/``UPPER`` change
ASCII letters only. Each function here is the filters' own arithmetic (``numpy_functions.py``,
``like.py``), value by value.

Scalar, row by row: SQLite calls them once per row the rest of the WHERE clause lets through (the
translation puts a declination band in front of every cone); the same arithmetic as the numpy
versions, without numpy's cost per call.
"""

from __future__ import annotations

import math
import random
import sqlite3
from functools import lru_cache
from typing import Any

from starling.adql.like import LikePattern


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


Vector = tuple[float, float, float]


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normal(v: Vector) -> Vector:
    norm = math.sqrt(_dot(v, v))
    return (v[0] / norm, v[1] / norm, v[2] / norm)


@lru_cache(maxsize=256)
def _projected(vertices: tuple[float, ...]) -> tuple[Vector, Vector, Vector, list[tuple[float, float]]]:
    """The polygon in the tangent plane about its centre (gnomonic: its great-circle edges are straight
    there), as ``geometry.polygon_contains`` projects it; made once per polygon, not once per row."""
    units = [_unit(vertices[i], vertices[i + 1]) for i in range(0, len(vertices), 2)]
    centre = _normal((sum(u[0] for u in units), sum(u[1] for u in units), sum(u[2] for u in units)))
    east = (-centre[1], centre[0], 0.0)  # the cross product of the north pole's axis with the centre
    east = _normal(east) if math.hypot(east[0], east[1]) > 1e-12 else (0.0, 1.0, 0.0)
    north = (
        centre[1] * east[2] - centre[2] * east[1],
        centre[2] * east[0] - centre[0] * east[2],
        centre[0] * east[1] - centre[1] * east[0],
    )
    plane = [(_dot(u, east) / _dot(u, centre), _dot(u, north) / _dot(u, centre)) for u in units]
    return centre, east, north, plane


def in_polygon(ra: float | None, dec: float | None, *vertices: float) -> int | None:
    if ra is None or dec is None:
        return None
    centre, east, north, plane = _projected(tuple(vertices))
    point = _unit(ra, dec)
    cos_angle = _dot(point, centre)
    if cos_angle <= 0:  # more than 90 degrees away: outside (ADQL polygons are under a hemisphere)
        return 0
    x, y = _dot(point, east) / cos_angle, _dot(point, north) / cos_angle
    inside = False
    for (x1, y1), (x2, y2) in zip(plane, plane[1:] + plane[:1], strict=True):
        if y1 != y2 and (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return int(inside)


def truncate(value: float | None, decimals: int | None) -> float | None:
    if value is None or decimals is None:
        return None
    scale = 10.0 ** int(decimals)
    try:
        return math.trunc(value * scale) / scale
    except (OverflowError, ValueError):  # an infinity or NaN: NULL
        return None


def round_half_away(value: float | None, decimals: int | None = 0) -> float | None:
    """ROUND as the filters compute it: sign(x) * floor(|x| * 10^n + 0.5) / 10^n."""
    if value is None or decimals is None:
        return None
    scale = 10.0 ** int(decimals)
    sign = (value > 0) - (value < 0)
    try:
        return sign * math.floor(abs(value) * scale + 0.5) / scale
    except (OverflowError, ValueError):
        return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def modulo(x: Any, y: Any) -> int | float | None:
    """MOD as the filters compute it (numpy's fmod): the sign of the dividend, exact between whole
    numbers; MOD(x, 0) is NULL."""
    if not (_number(x) and _number(y)):
        return None
    if isinstance(x, int) and isinstance(y, int):
        if y == 0:
            return None
        remainder = abs(x) % abs(y)
        return -remainder if x < 0 else remainder
    try:
        result = math.fmod(x, y)
    except ValueError:  # a zero divisor
        return None
    return result if math.isfinite(result) else None


def exponential(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        return math.exp(value)
    except OverflowError:
        return None


def power(base: float | None, exponent: float | None) -> float | None:
    if base is None or exponent is None:
        return None
    try:
        result = math.pow(base, exponent)
    except (OverflowError, ValueError):  # past a double, 0 to a negative power, a complex result
        return None
    return result if math.isfinite(result) else None


@lru_cache(maxsize=256)
def _pattern(pattern: str, escape: str | None, fold: bool) -> LikePattern:
    return LikePattern(pattern, escape, fold)


def like(value: Any, pattern: Any, escape: str | None, fold: int) -> int | None:
    """``value LIKE pattern [ESCAPE escape]`` (ILIKE when ``fold``) as the filters match it."""
    if value is None or pattern is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if fold:
        text = text.lower()
    return int(_pattern(str(pattern), escape, bool(fold)).match(text))


def lower(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def upper(value: Any) -> str | None:
    return None if value is None else str(value).upper()


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
    connection.create_function("starling_round", 1, round_half_away, deterministic=True)
    connection.create_function("starling_round", 2, round_half_away, deterministic=True)
    connection.create_function("starling_mod", 2, modulo, deterministic=True)
    connection.create_function("starling_exp", 1, exponential, deterministic=True)
    connection.create_function("starling_power", 2, power, deterministic=True)
    connection.create_function("starling_like", 4, like, deterministic=True)
    connection.create_function("starling_lower", 1, lower, deterministic=True)
    connection.create_function("starling_upper", 1, upper, deterministic=True)
