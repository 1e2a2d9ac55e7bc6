"""The numpy back end's functions: each function of the catalogue, by name, as column operations.

A builder gets the call's arguments (checked, the coordinate system already taken off) and returns
the compiled node; the geometry is in ``geometry.py``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sqlglot import exp

from starling.adql.checks import Checked
from starling.adql.geometry import (
    Circle,
    Point,
    Polygon,
    chord_degrees,
    contains,
    degrees_chord,
    distance,
    near,
)
from starling.adql.parse import Sql
from starling.adql.values import Truth, Vec, as_float, change_case, compare, number_column

Evaluate = Callable[[Any], Any]  # Columns -> Vec | Truth | Point | Circle | Polygon


@dataclass(frozen=True, slots=True)
class Node:
    type: str  # number, string, null, bool, point, circle, polygon
    run: Evaluate
    constant: Any = None  # the Python value, for a literal


class Compiling(Protocol):
    checked: Checked

    def compile(self, node: Sql) -> Node: ...


def literal(value: float | int | str) -> Node:
    kind = "string" if isinstance(value, str) else "number"
    vec = Vec.constant(value, kind)  # type: ignore[arg-type]
    return Node(kind, lambda c: vec, constant=value)


def divide(x: Any, y: Any) -> Any:
    return as_float(x) / as_float(y)  # ADQL's / is real division, whole numbers or not


def _unary(function: Callable[[Any], Any], v: Vec) -> Vec:
    return number_column(function(as_float(v.values)), v.null)


def _binary(function: Callable[[Any, Any], Any], a: Vec, b: Vec) -> Vec:
    return number_column(function(as_float(a.values), as_float(b.values)), a.null | b.null)


def _round_half_away(scale: float) -> Callable[[Any], Any]:
    def rounding(v: Any) -> Any:  # SQL rounds halves away from zero (numpy rounds them to even)
        return np.sign(v) * np.floor(np.abs(v) * scale + 0.5) / scale

    return rounding


def _truncate(scale: float) -> Callable[[Any], Any]:
    def truncate(v: Any) -> Any:
        return np.trunc(as_float(v) * scale) / scale

    return truncate


_MATHS_1: dict[str, Callable[[Any], Any]] = {
    "ABS": np.abs,
    "CEILING": np.ceil,
    "FLOOR": np.floor,
    "DEGREES": np.degrees,
    "RADIANS": np.radians,
    "EXP": np.exp,
    "SQRT": np.sqrt,
    "ACOS": np.arccos,
    "ASIN": np.arcsin,
    "ATAN": np.arctan,
    "COS": np.cos,
    "SIN": np.sin,
    "TAN": np.tan,
    "COT": lambda x: 1.0 / np.tan(x),
    "LOG": np.log,  # ADQL's LOG is the natural logarithm
}
_MATHS_2: dict[str, Callable[[Any, Any], Any]] = {
    "POWER": np.power,
    "ATAN2": np.arctan2,
    "LOG": lambda b, v: np.log(as_float(v)) / np.log(as_float(b)),  # LOG(base, x)
}


def _runs(compiler: Compiling, args: list[Sql]) -> list[Evaluate]:
    return [compiler.compile(a).run for a in args]


def _maths(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    if len(args) == 2:
        (a, b), function2 = _runs(compiler, args), _MATHS_2[name]
        return Node("number", lambda c: _binary(function2, a(c), b(c)))
    (x,), function = _runs(compiler, args), _MATHS_1[name]
    return Node("number", lambda c: _unary(function, x(c)))


def _rounding(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    digits = compiler.checked.constant(args[1]) if len(args) == 2 else 0
    scale = 10.0**digits
    rounding = _round_half_away(scale) if name == "ROUND" else _truncate(scale)
    x = compiler.compile(args[0]).run
    return Node("number", lambda c: _unary(rounding, x(c)))


def _rand(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    generator = np.random.default_rng(compiler.checked.constant(args[0]) if args else None)
    return Node("number", lambda c: Vec(generator.random(len(c)), np.bool_(False), "number"))


def _case(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    (s,) = _runs(compiler, args)
    upper = name == "UPPER"  # never cut short: UPPER('ß') is 'SS', wider than the column
    return Node("string", lambda c: (lambda v: Vec(change_case(v.values, upper), v.null, "string"))(s(c)))


def _coalesce(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    first, *rest = _runs(compiler, args)
    kind = compiler.checked.type(node)

    def coalesce(c: Any) -> Vec:
        result: Vec = first(c)
        for option in rest:
            other = option(c)
            values = np.where(result.null, other.values, result.values)
            result = Vec(values, result.null & other.null, kind)  # type: ignore[arg-type]
        return result

    return Node(kind, coalesce)


def _point(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    ra, dec = _runs(compiler, args)
    return Node("point", lambda c: Point(ra(c), dec(c)))


def _circle(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    if len(args) == 2:  # ADQL 2.1: CIRCLE(point, radius)
        centre, radius = _runs(compiler, args)
        return Node("circle", lambda c: Circle(centre(c), radius(c)))
    ra, dec, radius = _runs(compiler, args)
    return Node("circle", lambda c: Circle(Point(ra(c), dec(c)), radius(c)))


def _polygon(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    values = [float(compiler.checked.constant(a)) for a in args]
    polygon = Polygon(values[0::2], values[1::2])
    return Node("polygon", lambda c: polygon)


def _distance(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    if len(args) == 2:
        p, q = _runs(compiler, args)
        return Node("number", lambda c: distance(c, p(c), q(c)))
    ra1, dec1, ra2, dec2 = _runs(compiler, args)
    return Node("number", lambda c: distance(c, Point(ra1(c), dec1(c)), Point(ra2(c), dec2(c))))


_CLOSER = {
    operator.lt: operator.lt,
    operator.le: operator.le,
    operator.gt: operator.le,
    operator.ge: operator.lt,
}
_MIRRORED = {
    operator.lt: operator.gt,
    operator.le: operator.ge,
    operator.gt: operator.lt,
    operator.ge: operator.le,
}


def distance_compared(
    compiler: Compiling, op: Callable[[Any, Any], Any], left: Sql, right: Sql
) -> Node | None:
    """``DISTANCE(p, q) < x`` (or <=, >, >=, either way round) with x a number or a filter's parameter,
    judged by ``near``: k cones' worth of DISTANCE over a batch with one matrix product, no arcsin per
    pair. The same verdicts as computing each distance and comparing it (the pairs rounding could
    decide otherwise are computed so). None for any other comparison."""
    for call, bound, operation in ((left, right, op), (right, left, _MIRRORED.get(op))):
        if operation not in _CLOSER or not isinstance(call, exp.Func):
            continue
        called = compiler.checked.calls.get(id(call))
        if called is None or called[0] != "DISTANCE" or compiler.checked.constant(call) is not None:
            continue
        limit = compiler.compile(bound)
        parameter = isinstance(bound, exp.Placeholder) or (
            isinstance(bound, exp.Neg) and isinstance(bound.this, exp.Placeholder)  # -x: a plan's
        )
        if limit.type != "number" or not (limit.constant is not None or parameter):
            continue
        return Node("bool", _distance_within(compiler, call, limit.run, operation))
    return None


def _distance_within(
    compiler: Compiling, call: Sql, bound: Evaluate, op: Callable[[Any, Any], Any]
) -> Evaluate:
    _, args = compiler.checked.call(call)
    runs = _runs(compiler, args)
    closer = _CLOSER[op]  # DISTANCE > x is: not DISTANCE <= x, where both are known

    def run(c: Any) -> Truth:
        p, q = (
            (runs[0](c), runs[1](c))
            if len(runs) == 2
            else (Point(*(r(c) for r in runs[:2])), Point(*(r(c) for r in runs[2:])))
        )
        x = bound(c)

        def decide(chords: Any, pick: Any) -> Any:  # as ``distance`` computes it, then compared
            return compare(closer, chord_degrees(chords), pick(x.values))

        inside = near(c, p, q, degrees_chord(x.values), decide)
        # As ``distance`` says: a coordinate that is no finite number (a literal 1e999) makes it NULL.
        coordinates = (p.ra, p.dec, q.ra, q.dec)
        null = x.null
        for v in coordinates:
            null = null | v.null | ~np.isfinite(as_float(v.values))
        return Truth.of(inside if closer is op else ~inside, null)

    return run


def _contains(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    if compiler.checked.type(args[0]) != "point":  # INTERSECTS(region, point)
        args = [args[1], args[0]]
    point, region = _runs(compiler, args)
    return Node("number", lambda c: contains(c, point(c), region(c)))


def _coordinate(compiler: Compiling, node: Sql, name: str, args: list[Sql]) -> Node:
    (p,) = _runs(compiler, args)
    if name == "COORD1":
        return Node("number", lambda c: p(c).ra)
    return Node("number", lambda c: p(c).dec)


Builder = Callable[[Compiling, Sql, str, list[Sql]], Node]
FUNCTIONS: dict[str, Builder] = {
    **{name: _maths for name in (*_MATHS_1, *_MATHS_2)},
    "PI": lambda compiler, node, name, args: literal(math.pi),
    "ROUND": _rounding,
    "TRUNCATE": _rounding,
    "RAND": _rand,
    "LOWER": _case,
    "UPPER": _case,
    "COALESCE": _coalesce,
    "POINT": _point,
    "CIRCLE": _circle,
    "POLYGON": _polygon,
    "DISTANCE": _distance,
    "CONTAINS": _contains,
    "INTERSECTS": _contains,
    "COORD1": _coordinate,
    "COORD2": _coordinate,
}
