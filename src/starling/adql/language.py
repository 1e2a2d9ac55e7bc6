"""The filter language: an ADQL boolean expression (a WHERE clause), compiled to column operations.

Parsed by sqlglot, then checked and compiled here: every node becomes a function of the batch's
columns (``AlertColumns``) that returns a whole column, so a filter costs a few numpy operations per
batch, not a Python call per alert. Sub-expressions are shared between all the filters that run on a
batch (``mag < 19`` in ten filters is computed once), through the columns' memo.

Supported: arithmetic (+ - * / %, unary -), ``||``, comparisons (= <> != < <= > >=), AND, OR, NOT,
[NOT] BETWEEN, [NOT] IN (a list), IS [NOT] NULL, [NOT] LIKE / ILIKE, the ADQL math functions, LOWER,
UPPER, COALESCE, and the geometry: POINT, CIRCLE, POLYGON, DISTANCE, CONTAINS, INTERSECTS, COORD1,
COORD2 (ICRS, degrees). Errors give the line and column of the fault.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlglot import exp

from starling.adql.fields import AlertColumns, FieldCatalogue, FieldDef, catalogue
from starling.adql.geometry import polygon_contains, unit_vectors
from starling.adql.parse import FilterSyntaxError, parse_condition
from starling.adql.values import Truth, Vec
from starling.alert.model import Alert

# sqlglot's node classes (exp.Expression and its many subclasses); typed loosely across its versions.
Sql = Any


class Columns(Protocol):
    def __len__(self) -> int: ...

    def column(self, field: FieldDef) -> Vec: ...


# -- the compiled tree -------------------------------------------------------------------------------

Evaluate = Callable[[Any], Any]  # Columns -> Vec | Truth | Point | Circle | Polygon


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


@dataclass(frozen=True, slots=True)
class Node:
    type: str  # number, string, null, bool, point, circle, polygon
    run: Evaluate
    constant: Any = None  # the Python value, for a literal


@dataclass
class CompiledFilter:
    expression: str
    fields: frozenset[str]
    root: Evaluate = field(repr=False)

    def evaluate_alerts(self, alerts: Sequence[Alert]) -> np.ndarray:
        """The verdicts on some alerts, outside a stage (a test, a single alert)."""
        return self.evaluate(AlertColumns(alerts))

    def evaluate(self, columns: Columns) -> np.ndarray:
        """One bool per row: where the expression is true (unknown and false are both left out)."""
        with np.errstate(all="ignore"):  # sqrt(-1), 1/0 and the like give NULL, not warnings
            truth: Truth = self.root(columns)
        return np.broadcast_to(truth.true, (len(columns),)).copy()


_COMPARISONS: dict[type[Sql], Callable[[Any, Any], Any]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}
_ARITHMETIC: dict[type[Sql], Callable[[Any, Any], Any]] = {
    exp.Add: operator.add,
    exp.Sub: operator.sub,
    exp.Mul: operator.mul,
}
_MATH_1: dict[type[Sql], Callable[[Any], Any]] = {
    exp.Abs: np.abs,
    exp.Ceil: np.ceil,
    exp.Floor: np.floor,
    exp.Degrees: np.degrees,
    exp.Radians: np.radians,
    exp.Exp: np.exp,
    exp.Sqrt: np.sqrt,
    exp.Acos: np.arccos,
    exp.Asin: np.arcsin,
    exp.Atan: np.arctan,
    exp.Cos: np.cos,
    exp.Sin: np.sin,
    exp.Tan: np.tan,
    exp.Cot: lambda x: 1.0 / np.tan(x),
}
GEOMETRY_FUNCTIONS = ("POINT", "CIRCLE", "POLYGON", "DISTANCE", "CONTAINS", "INTERSECTS", "COORD1", "COORD2")
KNOWN_FUNCTIONS = [
    "ABS",
    "CEILING",
    "DEGREES",
    "EXP",
    "FLOOR",
    "LOG",
    "LOG10",
    "MOD",
    "PI",
    "POWER",
    "RADIANS",
    "SQRT",
    "RAND",
    "ROUND",
    "TRUNCATE",
    "ACOS",
    "ASIN",
    "ATAN",
    "ATAN2",
    "COS",
    "SIN",
    "COT",
    "TAN",
    "LOWER",
    "UPPER",
    "COALESCE",
    *GEOMETRY_FUNCTIONS,
]


def _float(values: Any) -> Any:
    return values.astype(float) if isinstance(values, np.ndarray) and values.dtype != object else values


def _number(values: Any, null: Any) -> Vec:
    """A numeric result; NaN and infinities from the maths (sqrt(-1), 1/0) read as NULL."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        null = null | ~np.isfinite(values)
    return Vec(np.asarray(values), null, "number")


_COMPILATIONS = itertools.count()


class _Compiler:
    def __init__(self, expression: str, fields: FieldCatalogue, parameters: dict[str, Vec]) -> None:
        self.expression = expression
        self.catalogue = fields
        self.parameters = parameters
        # Sub-expressions with parameters belong to this compilation; the others are shared by all.
        self.namespace = f"{next(_COMPILATIONS)}|"
        self.used: set[str] = set()

    # -- errors --------------------------------------------------------------------------------------

    def _position(self, node: Sql) -> tuple[int, int]:
        """Where the node starts: the earliest token sqlglot placed in it, else its function name."""
        starts = [
            int(candidate.meta["start"])
            for candidate in (node, *node.find_all(exp.Identifier, exp.Literal))
            if isinstance(getattr(candidate, "meta", {}).get("start"), int)
        ]
        found = min(starts) if starts else -1
        if found < 0 and isinstance(node, exp.Func):
            found = self.expression.upper().find(self._name(node))
        if found < 0:
            return 1, 1
        if found > 0 and self.expression[found - 1] in "'\"":  # a quoted token starts at its quote
            found -= 1
        line_start = self.expression.rfind("\n", 0, found) + 1
        return self.expression.count("\n", 0, found) + 1, found - line_start + 1

    def fail(self, node: Sql, message: str) -> FilterSyntaxError:
        line, column = self._position(node)
        return FilterSyntaxError(message, self.expression, line, column)

    def expect(self, node: Sql, compiled: Node, *types: str) -> Node:
        if compiled.type not in (*types, "null"):
            raise self.fail(
                node, f"{node.sql(dialect='')} is a {compiled.type}, where a {' or '.join(types)} is needed"
            )
        return compiled

    # -- the walk ------------------------------------------------------------------------------------

    def compile(self, node: Sql) -> Node:
        compiled = self._compile(node)
        if compiled.constant is not None or compiled.type == "null":
            return compiled
        key = node.sql()
        if self.parameters and node.find(exp.Placeholder) is not None:
            key = self.namespace + key
        run = compiled.run

        def shared(columns: Any) -> Any:  # one evaluation per batch for every filter that has it
            memo: dict[str, Any] | None = getattr(columns, "memo", None)
            if memo is None:
                return run(columns)
            if key not in memo:
                memo[key] = run(columns)
            return memo[key]

        return Node(compiled.type, shared)

    def _compile(self, node: Sql) -> Node:
        if isinstance(node, exp.Paren):
            return self.compile(node.this)
        if isinstance(node, (exp.And, exp.Or)):
            left = self.expect(node.this, self.compile(node.this), "bool")
            right = self.expect(node.expression, self.compile(node.expression), "bool")
            combine = Truth.both if isinstance(node, exp.And) else Truth.either
            return Node("bool", lambda c: combine(left.run(c), right.run(c)))
        if isinstance(node, exp.Not):
            inner = self.expect(node.this, self.compile(node.this), "bool")
            return Node("bool", lambda c: inner.run(c).negate())
        if type(node) in _COMPARISONS:
            return self._comparison(node, _COMPARISONS[type(node)], node.this, node.expression)
        if isinstance(node, exp.Between):
            low = self._comparison(node, operator.ge, node.this, node.args["low"])
            high = self._comparison(node, operator.le, node.this, node.args["high"])
            return Node("bool", lambda c: low.run(c).both(high.run(c)))
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise self.fail(node, "IN takes a list of values here, not a query")
            options = [self._comparison(node, operator.eq, node.this, item) for item in node.expressions]

            def any_of(c: Any) -> Truth:
                result: Truth = options[0].run(c)
                for option in options[1:]:
                    result = result.either(option.run(c))
                return result

            return Node("bool", any_of)
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise self.fail(node, "IS is followed by NULL or NOT NULL here")
            inner = self.compile(node.this)
            if inner.type not in ("number", "string", "null"):
                raise self.fail(node, f"IS NULL applies to a value, not a {inner.type}")
            return Node("bool", lambda c: (lambda v: Truth(v.null, ~v.null))(inner.run(c)))
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like(node)
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
            return self._arithmetic(node)
        if isinstance(node, exp.Neg):
            inner = self.expect(node.this, self.compile(node.this), "number")
            if inner.constant is not None:
                return self._literal(-inner.constant)
            return Node("number", lambda c: (lambda v: Vec(-v.values, v.null, "number"))(inner.run(c)))
        if isinstance(node, exp.DPipe):
            left = self.expect(node.this, self.compile(node.this), "string")
            right = self.expect(node.expression, self.compile(node.expression), "string")
            return Node(
                "string",
                lambda c: (lambda a, b: Vec(a.values + b.values, a.null | b.null, "string"))(
                    left.run(c), right.run(c)
                ),
            )
        if isinstance(node, exp.Literal):
            if node.is_string:
                return self._literal(node.this)
            text = node.this
            try:
                return self._literal(int(text))  # whole numbers stay exact (ids beyond 2**53)
            except ValueError:
                return self._literal(float(text))
        if isinstance(node, exp.Null):
            return Node("null", lambda c: Vec.constant(None, "number"))
        if isinstance(node, exp.Placeholder) and node.name in self.parameters:
            parameter = self.parameters[node.name]
            return Node(parameter.kind, lambda c: parameter)
        if isinstance(node, exp.Column):
            return self._field(node)
        if isinstance(node, exp.Func):
            return self._function(node)
        raise self.fail(node, f"{node.sql()!r} is not allowed in a filter (a filter is one condition)")

    def _literal(self, value: float | int | str) -> Node:
        kind = "string" if isinstance(value, str) else "number"
        vec = Vec.constant(value, kind)  # type: ignore[arg-type]
        return Node(kind, lambda c: vec, constant=value)

    def _field(self, node: Sql) -> Node:
        parts = [p for p in node.parts]
        name = ".".join(p.name if p.args.get("quoted") else p.name.lower() for p in parts)
        found = self.catalogue.resolve(name)
        if found is None:
            near = self.catalogue.nearest(name)
            hint = f"; did you mean {', '.join(near)}?" if near else "; see `starling filter fields`"
            raise self.fail(node, f"unknown field {name!r}{hint}")
        self.used.add(found.name)
        return Node(found.kind, lambda c: c.column(found))

    def _comparison(self, node: Sql, compare: Callable[[Any, Any], Any], a: Sql, b: Sql) -> Node:
        left, right = self.compile(a), self.compile(b)
        for side, compiled in ((a, left), (b, right)):
            self.expect(side, compiled, "number", "string")
        if "null" not in (left.type, right.type) and left.type != right.type:
            raise self.fail(node, f"cannot compare a {left.type} ({a.sql()}) with a {right.type} ({b.sql()})")

        def run(c: Any) -> Truth:
            x, y = left.run(c), right.run(c)
            return Truth.of(compare(x.values, y.values), x.null | y.null)

        return Node("bool", run)

    def _like(self, node: Sql) -> Node:
        subject = self.expect(node.this, self.compile(node.this), "string")
        pattern_node = self.compile(node.expression)
        if not isinstance(pattern_node.constant, str):
            raise self.fail(node.expression, "LIKE takes a string pattern")
        pattern = "".join(
            ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern_node.constant
        )
        regex = re.compile(pattern, re.DOTALL | (re.IGNORECASE if isinstance(node, exp.ILike) else 0))

        def run(c: Any) -> Truth:
            v = subject.run(c)
            values = np.atleast_1d(v.values)
            matched = np.fromiter(
                (regex.fullmatch(s) is not None for s in values), dtype=bool, count=len(values)
            )
            return Truth.of(matched if np.ndim(v.values) else matched[0], v.null)

        return Node("bool", run)

    def _arithmetic(self, node: Sql) -> Node:
        left = self.expect(node.this, self.compile(node.this), "number")
        right = self.expect(node.expression, self.compile(node.expression), "number")
        if isinstance(node, exp.Div):
            apply: Callable[[Any, Any], Any] = _divide
        elif isinstance(node, exp.Mod):
            apply = np.fmod  # SQL's MOD keeps the sign of the dividend
        else:
            apply = _ARITHMETIC[type(node)]

        def run(c: Any) -> Vec:
            x, y = left.run(c), right.run(c)
            return _number(apply(x.values, y.values), x.null | y.null)

        return Node("number", run)

    def _numbers(self, node: Sql, args: list[Sql], count: int) -> list[Node]:
        if len(args) != count:
            raise self.fail(
                node, f"{self._name(node)} takes {count} argument{'s' if count != 1 else ''}, not {len(args)}"
            )
        return [self.expect(a, self.compile(a), "number") for a in args]

    @staticmethod
    def _name(node: Sql) -> str:
        return node.name.upper() if isinstance(node, exp.Anonymous) else node.sql_name()

    def _function(self, node: Sql) -> Node:
        if isinstance(node, exp.Anonymous):
            return self._geometry(node, node.name.upper(), list(node.expressions))
        args = [
            a
            for a in (node.args.get("this"), node.args.get("expression"), node.args.get("decimals"))
            if a is not None
        ]
        if type(node) in _MATH_1:
            (x,) = self._numbers(node, args, 1)
            function = _MATH_1[type(node)]
            return Node("number", lambda c: (lambda v: _with_errstate(function, v))(x.run(c)))
        if isinstance(node, exp.Pi):
            return self._literal(math.pi)
        if isinstance(node, (exp.Pow, exp.Atan2, exp.Mod)):
            if isinstance(node, exp.Mod):
                return self._arithmetic(node)
            a, b = self._numbers(node, args, 2)
            function2: Callable[[Any, Any], Any] = np.power if isinstance(node, exp.Pow) else np.arctan2
            return Node("number", lambda c: _binary(function2, a.run(c), b.run(c)))
        if isinstance(node, exp.Log):
            if len(args) == 1:  # ADQL's LOG is the natural logarithm
                (x,) = self._numbers(node, args, 1)
                return Node("number", lambda c: _with_errstate(np.log, x.run(c)))
            base, x = self._numbers(node, args, 2)
            return Node(
                "number",
                lambda c: _binary(lambda b, v: np.log(_float(v)) / np.log(_float(b)), base.run(c), x.run(c)),
            )
        if isinstance(node, (exp.Round, exp.Trunc)):
            values = (
                self._numbers(node, args, len(args)) if 1 <= len(args) <= 2 else self._numbers(node, args, 1)
            )
            digits = values[1].constant if len(values) == 2 else 0
            if not isinstance(digits, int):
                raise self.fail(node, f"{self._name(node)} takes a whole number of decimals")
            scale = 10.0**digits
            rounding = _round_half_away(scale) if isinstance(node, exp.Round) else _truncate(scale)
            return Node("number", lambda c: _with_errstate(rounding, values[0].run(c)))
        if isinstance(node, exp.Rand):
            seed = self.compile(args[0]).constant if args else None
            generator = np.random.default_rng(seed)
            return Node("number", lambda c: Vec(generator.random(len(c)), np.bool_(False), "number"))
        if isinstance(node, (exp.Lower, exp.Upper)):
            (s,) = [self.expect(a, self.compile(a), "string") for a in args]
            convert = np.strings.lower if isinstance(node, exp.Lower) else np.strings.upper
            return Node("string", lambda c: (lambda v: Vec(convert(v.values), v.null, "string"))(s.run(c)))
        if isinstance(node, exp.Coalesce):
            options = [self.compile(a) for a in [node.this, *node.expressions]]
            kinds = {o.type for o in options} - {"null"}
            if len(kinds) > 1 or not kinds <= {"number", "string"}:
                raise self.fail(node, "COALESCE takes values of one type")
            kind = kinds.pop() if kinds else "number"

            def coalesce(c: Any) -> Vec:
                result: Vec = options[0].run(c)
                for option in options[1:]:
                    other = option.run(c)
                    values = np.where(result.null, other.values, result.values)
                    result = Vec(values, result.null & other.null, kind)  # type: ignore[arg-type]
                return result

            return Node(kind, coalesce)
        return self._geometry(node, self._name(node), args)

    def _geometry(self, node: Sql, name: str, args: list[Sql]) -> Node:
        if name in ("POINT", "CIRCLE", "POLYGON"):
            args = self._without_frame(node, name, args)
        if name == "POINT":
            ra, dec = self._numbers(node, args, 2)
            return Node("point", lambda c: Point(ra.run(c), dec.run(c)))
        if name == "CIRCLE":
            if len(args) == 2:  # ADQL 2.1: CIRCLE(point, radius)
                centre = self.expect(args[0], self.compile(args[0]), "point")
                (radius,) = self._numbers(node, args[1:], 1)
                return Node("circle", lambda c: Circle(centre.run(c), radius.run(c)))
            ra, dec, radius = self._numbers(node, args, 3)
            return Node("circle", lambda c: Circle(Point(ra.run(c), dec.run(c)), radius.run(c)))
        if name == "POLYGON":
            values = [self.compile(a).constant for a in args]
            if len(values) < 6 or len(values) % 2 or not all(isinstance(v, (int, float)) for v in values):
                raise self.fail(
                    node, "POLYGON takes three or more vertices as constant ra, dec pairs (degrees)"
                )
            polygon = Polygon([float(v) for v in values[0::2]], [float(v) for v in values[1::2]])
            return Node("polygon", lambda c: polygon)
        if name == "DISTANCE":
            if len(args) == 2:
                p = self.expect(args[0], self.compile(args[0]), "point")
                q = self.expect(args[1], self.compile(args[1]), "point")
                return Node("number", lambda c: _distance(c, p.run(c), q.run(c)))
            ra1, dec1, ra2, dec2 = self._numbers(node, args, 4)
            return Node(
                "number",
                lambda c: _distance(c, Point(ra1.run(c), dec1.run(c)), Point(ra2.run(c), dec2.run(c))),
            )
        if name in ("CONTAINS", "INTERSECTS"):
            if len(args) != 2:
                raise self.fail(node, f"{name} takes 2 arguments, not {len(args)}")
            first, second = self.compile(args[0]), self.compile(args[1])
            if name == "INTERSECTS" and first.type in ("circle", "polygon") and second.type == "point":
                first, second = second, first
            if first.type != "point" or second.type not in ("circle", "polygon"):
                raise self.fail(node, f"{name} here takes a POINT and a CIRCLE or POLYGON")
            return Node("number", lambda c: _contains(c, first.run(c), second.run(c)))
        if name in ("COORD1", "COORD2"):
            if len(args) != 1:
                raise self.fail(node, f"{name} takes 1 argument, not {len(args)}")
            p = self.expect(args[0], self.compile(args[0]), "point")
            return Node("number", lambda c: p.run(c).ra if name == "COORD1" else p.run(c).dec)
        if name == "BOX":
            raise self.fail(node, "BOX is deprecated in ADQL 2.1 and not supported; use POLYGON")
        near = [n for n in KNOWN_FUNCTIONS if n.startswith(name[:3])] or KNOWN_FUNCTIONS[:0]
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise self.fail(node, f"unknown function {name}{hint}")

    def _without_frame(self, node: Sql, name: str, args: list[Sql]) -> list[Sql]:
        """ADQL's optional first argument, the coordinate system: only ICRS (or empty) is served."""
        if args and isinstance(args[0], exp.Literal) and args[0].is_string:
            frame = args[0].this.strip().upper()
            if frame not in ("", "ICRS") and not frame.startswith("ICRS "):
                raise self.fail(args[0], f"coordinate system {args[0].this!r} is not served; alerts are ICRS")
            return args[1:]
        return args


def _divide(x: Any, y: Any) -> Any:
    return _float(x) / _float(y)  # ADQL's / is real division, whole numbers or not


def _round_half_away(scale: float) -> Callable[[Any], Any]:
    def rounding(v: Any) -> Any:  # SQL rounds halves away from zero (numpy rounds them to even)
        return np.sign(v) * np.floor(np.abs(v) * scale + 0.5) / scale

    return rounding


def _truncate(scale: float) -> Callable[[Any], Any]:
    def truncate(v: Any) -> Any:
        return np.trunc(_float(v) * scale) / scale

    return truncate


def _with_errstate(function: Callable[[Any], Any], v: Vec) -> Vec:
    return _number(function(_float(v.values)), v.null)


def _binary(function: Callable[[Any, Any], Any], a: Vec, b: Vec) -> Vec:
    return _number(function(_float(a.values), _float(b.values)), a.null | b.null)


def _unit_vectors(columns: Any, point: Point) -> Any:
    """The point's unit vectors, computed once per batch for the alerts' own positions."""
    memo: dict[Any, Any] | None = getattr(columns, "memo", None)
    key = ("unit", id(point.ra.values), id(point.dec.values))
    if memo is not None and key in memo:
        return memo[key][0]
    vectors = unit_vectors(_float(point.ra.values), _float(point.dec.values))
    if memo is not None:  # the arrays are kept with the key, so their ids stay theirs for the batch
        memo[key] = (vectors, point.ra.values, point.dec.values)
    return vectors


def _distance(columns: Any, p: Point, q: Point) -> Vec:
    chord = _chord(columns, p, q)
    return _number(
        np.degrees(2.0 * np.arcsin(np.minimum(1.0, chord / 2.0))),
        p.ra.null | p.dec.null | q.ra.null | q.dec.null,
    )


def _chord(columns: Any, p: Point, q: Point) -> Any:
    """The straight-line distance between the points on the unit sphere (stable at small angles)."""
    difference = _unit_vectors(columns, p) - _unit_vectors(columns, q)
    return np.sqrt(np.einsum("...i,...i->...", difference, difference))


def _contains(columns: Any, point: Point, region: Circle | Polygon) -> Vec:
    null = point.ra.null | point.dec.null
    if isinstance(region, Circle):
        # Inside when the chord to the centre is at most the chord of the radius: no arcsin per alert.
        limit = 2.0 * np.sin(np.radians(np.minimum(_float(region.radius.values), 180.0)) / 2.0)
        inside = _chord(columns, point, region.centre) <= limit
        null = null | region.centre.ra.null | region.centre.dec.null | region.radius.null
    else:
        inside = polygon_contains(_float(point.ra.values), _float(point.dec.values), region.ra, region.dec)
    return Vec(np.asarray(inside).astype(np.int64), null, "number")


def compile_filter(expression: str, fields: FieldCatalogue | None = None) -> CompiledFilter:
    """Parse and check ``expression``; raises FilterSyntaxError naming the position of the fault."""
    return compile_tree(parse_condition(expression), expression, fields)


def compile_tree(
    tree: Sql, expression: str, fields: FieldCatalogue | None = None, parameters: dict[str, Vec] | None = None
) -> CompiledFilter:
    """Compile a parsed condition. ``parameters`` give the values of its placeholders (``:p0`` ...),
    as columns of shape (k, 1): the compiled filter then judges k filters of one shape at once."""
    compiler = _Compiler(expression, fields or catalogue(), parameters or {})
    root = compiler.compile(tree)
    if root.type != "bool":
        raise compiler.fail(
            tree, f"a filter is a condition (true or false), not a {root.type}; compare it with something"
        )
    return CompiledFilter(expression, frozenset(compiler.used), root.run)
