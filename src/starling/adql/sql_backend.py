"""ADQL queries translated into the SQL of the store's backends, where they run (``query.py`` reads and
checks them): tables where each backend keeps them, ADQL's functions as each backend names them, and
the sky geometry as each computes it (q3c and pgSphere on PostgreSQL; registered functions behind a
declination band on SQLite: ``sqlite_functions.py``).

A query means what a stream filter with its condition means (``numpy_backend.py``), on both backends:
``/`` is real division and NULL by zero; ``MOD``, ``ROUND``, ``TRUNCATE``, ``EXP``, ``POWER``, ``SQRT``,
``LOG``, ``ACOS``, ``ASIN`` and ``COT`` are the filters' arithmetic (NULL where a filter's value is no
finite number), by functions of the TAP service's (``sqlite_functions.py``,
``postgres_functions.py``); ``LOG10(x)`` is ``LN(x) / LN(10)`` as a filter computes it; ``LIKE`` is
case-sensitive, with no escape character unless ``ESCAPE`` names one (PostgreSQL's default is the backslash);
text compared with a text constant is in the order of its characters (PostgreSQL: ``COLLATE "C"``); a
decimal constant is a double on PostgreSQL too (not an exact ``numeric``).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

from starling.adql.catalogue import catalogue_name, function_arguments
from starling.adql.geometry import polygon_dec_range
from starling.adql.parse import Sql, number_literal
from starling.adql.postgres_functions import qualified
from starling.adql.query import Backend, CheckedQuery


def to_sql(checked: CheckedQuery, backend: Backend) -> str:
    """The query in the backend's SQL: tables where the backend keeps them, geometry as it computes it."""
    tree = checked.tree.copy()
    by_name = {t.adql_name.lower(): t for t in checked.tables}
    for table in tree.find_all(exp.Table):
        key = f"{table.db}.{table.name}".lower()
        if key in by_name:
            target = by_name[key].sqlite_name if backend == "sqlite" else by_name[key].postgres_name
            schema_name, _, table_name = target.rpartition(".")
            table.set("db", exp.to_identifier(schema_name) if schema_name else None)
            table.set("this", exp.to_identifier(table_name))
    tree = tree.transform(lambda node: _geometry(node, backend), copy=False)
    tree = _bottom_up(tree, lambda node: _maths(node, backend))
    tree = _bottom_up(tree, lambda node: _strings(node, backend))
    if backend == "postgres":
        tree = _bottom_up(tree, _double_constant)
    return str(tree.sql(dialect="sqlite" if backend == "sqlite" else "postgres"))


def _bottom_up(tree: Sql, rewrite: Callable[[Sql], Sql]) -> Sql:
    """``rewrite`` applied to every node, each after its children: a call rewritten into another keeps
    its rewritten arguments (sqlglot's ``transform`` goes top down and skips what it replaced)."""
    for node in reversed(list(tree.walk())):  # breadth first, reversed: the deepest first
        parent, key, index = node.parent, node.arg_key, node.index  # before ``rewrite`` moves it
        new = rewrite(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            parent.set(key, new, index)
    return tree


# The functions each backend computes otherwise than the filters, as the service's own functions.
_SQLITE_MATHS: dict[type[Sql], str] = {exp.Exp: "starling_exp", exp.Pow: "starling_power"}
_POSTGRES_MATHS: dict[type[Sql], str] = {
    exp.Sqrt: "sqrt",
    exp.Exp: "exp",
    exp.Pow: "power",
    exp.Acos: "acos",
    exp.Asin: "asin",
}


def _call(name: str, *args: Sql) -> Sql:
    return exp.Anonymous(this=name, expressions=list(args))


def _log(node: Sql, backend: Backend) -> Sql:
    """LOG(x) is the natural logarithm; LOG(b, x) and LOG10(x) are LN(x) / LN(b), as a filter has them."""
    base, value = (node.this, node.expression) if node.expression is not None else (None, node.this)
    if backend == "postgres":
        return _call(qualified("ln"), value) if base is None else _call(qualified("log"), base, value)
    if base is None:
        return exp.Ln(this=value)
    return exp.Div(this=exp.Ln(this=value), expression=exp.Ln(this=base))


def _maths(node: Sql, backend: Backend) -> Sql:
    """ADQL's functions where the backends name them otherwise or compute them otherwise than the
    filters (see the module's docstring)."""
    if isinstance(node, exp.Log):
        return _log(node, backend)
    if isinstance(node, exp.Div):
        node.set("safe", True)  # x / 0 is NULL: PostgreSQL's NULLIF(y, 0); SQLite's own way
        return node
    if isinstance(node, (exp.Round, exp.Trunc, exp.Mod)):
        return _rounding(node, backend)
    if isinstance(node, exp.Rand):
        return _call("random" if backend == "postgres" else "starling_rand")
    if isinstance(node, exp.Cot):
        return _call(qualified("cot") if backend == "postgres" else "starling_cot", node.this)
    names = _POSTGRES_MATHS if backend == "postgres" else _SQLITE_MATHS
    name = names.get(type(node))
    if name is None:
        return node
    name = qualified(name) if backend == "postgres" else name
    return _call(name, *function_arguments(node))


def _rounding(node: Sql, backend: Backend) -> Sql:
    if isinstance(node, exp.Mod):
        return _call(
            qualified("modulo") if backend == "postgres" else "starling_mod", node.this, node.expression
        )
    decimals = node.args.get("decimals")
    if isinstance(node, exp.Trunc) and decimals is None:
        return node  # TRUNCATE(x): both backends' own, exact
    if isinstance(node, exp.Round) and decimals is None:
        decimals = exp.Literal.number(0)  # PostgreSQL rounds a double's halves to even
    if backend == "postgres":
        name = "round" if isinstance(node, exp.Round) else "truncate"
        return _call(qualified(name), node.this, decimals)
    return _call(
        "starling_round" if isinstance(node, exp.Round) else "starling_truncate", node.this, decimals
    )


def _strings(node: Sql, backend: Backend) -> Sql:
    """LIKE as the filters match it; SQLite's LOWER and UPPER beyond ASCII letters."""
    like, escape = (node.this, node.expression) if isinstance(node, exp.Escape) else (node, None)
    if isinstance(node, (exp.Like, exp.ILike)) and isinstance(node.parent, exp.Escape):
        return node  # rewritten with its ESCAPE, next
    if isinstance(like, (exp.Like, exp.ILike)):
        if backend == "postgres":
            if escape is None:  # PostgreSQL's default escape character is a backslash
                return exp.Escape(this=like, expression=exp.Literal.string(""))
            return node
        matched = _call(
            "starling_like",
            like.this,
            like.expression,
            escape if escape is not None else exp.Null(),
            exp.Literal.number(int(isinstance(like, exp.ILike))),
        )
        return exp.Not(this=matched) if like.args.get("negate") else matched
    if backend == "sqlite" and isinstance(node, (exp.Lower, exp.Upper)):
        return _call("starling_lower" if isinstance(node, exp.Lower) else "starling_upper", node.this)
    if backend == "postgres" and isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE, exp.Between)):
        # Text in the order of its characters, as a filter (and SQLite) compares it, whatever the
        # database's collation (en_US would put 'b' before 'C').
        for key in ("this", "expression", "low", "high"):
            operand = node.args.get(key)
            if isinstance(operand, exp.Literal) and operand.is_string:
                collated = exp.Collate(this=operand, expression=exp.to_identifier("C", quoted=True))
                node.set(key, exp.Paren(this=collated))  # in brackets: a BETWEEN bound takes no COLLATE
    return node


_INT64_MIN = -(2**63)
_ARITHMETIC = (exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


def _double_constant(node: Sql) -> Sql:
    """A constant that is no whole number within 64 bits is a double (PostgreSQL reads it as numeric,
    exact in decimal: ``ndethist * 0.1`` would not be what a filter computes); a NULL in arithmetic is a
    double's, in ``||`` a text's (PostgreSQL cannot choose an operator for an untyped NULL: ``-NULL``)."""
    if isinstance(node, exp.Literal) and not node.is_string and not _whole(node):
        return exp.Cast(this=node, to=exp.DataType.build("double"))
    if isinstance(node, exp.Null) and isinstance(node.parent, (*_ARITHMETIC, exp.DPipe)):
        kind = "text" if isinstance(node.parent, exp.DPipe) else "double"
        return exp.Cast(this=node, to=exp.DataType.build(kind))
    return node


def _whole(literal: Sql) -> bool:
    """A literal PostgreSQL may read as a bigint: a whole number within 64 bits (``-5`` is one literal:
    ``parse.signed_numbers``), save int64's least negated (``-(-9223372036854775808)``, beyond int64)."""
    value = number_literal(literal.this)
    if value != _INT64_MIN:
        return isinstance(value, int)
    parent = literal.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return not isinstance(parent, exp.Neg)


def _call_args(node: Sql) -> list[Sql]:
    args = function_arguments(node)
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        return args[1:]  # the coordinate system (ICRS)
    return args


def _is_call(node: Sql, *names: str) -> bool:
    return isinstance(node, exp.Func) and catalogue_name(node) in names


def _point(node: Sql) -> tuple[Sql, Sql]:
    if not _is_call(node, "POINT"):
        raise ValueError("a POINT is needed here")
    ra, dec = _call_args(node)
    return ra, dec


def _region_predicate(node: Sql, backend: Backend) -> Sql:
    """CONTAINS(point, region) / INTERSECTS as a true/false condition of the backend."""
    first, second = _call_args(node)
    if _is_call(first, "CIRCLE", "POLYGON") and _is_call(second, "POINT"):
        first, second = second, first
    ra, dec = _point(first)
    region = _call_args(second)
    if _is_call(second, "CIRCLE"):
        if len(region) == 2:  # CIRCLE(POINT(...), r)
            centre_ra, centre_dec = _point(region[0])
            radius = region[1]
        else:
            centre_ra, centre_dec, radius = region
        if backend == "postgres":
            if any(isinstance(n, exp.Column) for part in (centre_ra, centre_dec) for n in part.walk()):
                # A centre from another table (a crossmatch): q3c's join form, which the planner runs
                # as an index search per centre (its radial form would scan).
                return exp.Anonymous(this="q3c_join", expressions=[centre_ra, centre_dec, ra, dec, radius])
            return exp.Anonymous(
                this="q3c_radial_query", expressions=[ra, dec, centre_ra, centre_dec, radius]
            )
        # A declination band first: cheap, and what an index on dec can serve.
        band = exp.Between(
            this=dec.copy(),
            low=exp.Sub(this=centre_dec.copy(), expression=radius.copy()),
            high=exp.Add(this=centre_dec.copy(), expression=radius.copy()),
        )
        exact = exp.EQ(
            this=exp.Anonymous(this="starling_circle", expressions=[ra, dec, centre_ra, centre_dec, radius]),
            expression=exp.Literal.number(1),
        )
        return exp.Paren(this=exp.And(this=band, expression=exact))
    if _is_call(second, "POLYGON"):
        if backend == "postgres":
            return _postgres_polygon(ra, dec, region)
        exact = exp.EQ(
            this=exp.Anonymous(this="starling_polygon", expressions=[ra, dec, *region]),
            expression=exp.Literal.number(1),
        )
        # A declination band first, as for a circle: the band the polygon spans (its edges bulge towards
        # a pole), which an index on dec can serve.
        low, high = polygon_dec_range(*_vertices(region))
        band = exp.Between(this=dec.copy(), low=exp.Literal.number(low), high=exp.Literal.number(high))
        return exp.Paren(this=exp.And(this=band, expression=exact))
    raise ValueError("CONTAINS takes a POINT and a CIRCLE or POLYGON")


Q3C_POLYGON_MAX_DEG = 20.0  # q3c's polygon search refuses polygons wider than about 23 degrees


def _vertex_values(region: list[Sql]) -> list[float]:
    """A polygon's numbers, ra and dec in turn (constants: the checks saw to it)."""
    return [float(v.this) if isinstance(v, exp.Literal) else -float(v.this.this) for v in region]


def _vertices(region: list[Sql]) -> tuple[list[float], list[float]]:
    values = _vertex_values(region)
    return values[0::2], values[1::2]


def _postgres_polygon(ra: Sql, dec: Sql, region: list[Sql]) -> Sql:
    """A point in a polygon on PostgreSQL: pgSphere's exact test, behind q3c's indexed one when the
    polygon is small enough for q3c."""
    values = _vertex_values(region)
    polygon = "{" + ",".join(f"({values[i]!r}d,{values[i + 1]!r}d)" for i in range(0, len(values), 2)) + "}"
    point = exp.Anonymous(
        this="spoint",
        expressions=[
            exp.Anonymous(this="radians", expressions=[ra]),
            exp.Anonymous(this="radians", expressions=[dec]),
        ],
    )
    exact = exp.Paren(
        this=sqlglot.parse_one(f"CAST('{polygon}' AS spoly) @> x", read="postgres").transform(
            lambda node: point.copy() if isinstance(node, exp.Column) and node.name == "x" else node
        )
    )
    ras, decs = values[0::2], values[1::2]
    span = max(max(decs) - min(decs), min(max(ras) - min(ras), 360 - (max(ras) - min(ras))))
    if span > Q3C_POLYGON_MAX_DEG:
        return exact
    vertices = exp.Array(
        expressions=[exp.Cast(this=v.copy(), to=exp.DataType.build("double")) for v in region]
    )
    indexed = exp.Anonymous(this="q3c_poly_query", expressions=[ra.copy(), dec.copy(), vertices])
    return exp.Paren(this=exp.And(this=indexed, expression=exact))


def _geometry(node: Sql, backend: Backend) -> Sql:
    if isinstance(node, (exp.EQ, exp.NEQ)):
        for call, other in ((node.this, node.expression), (node.expression, node.this)):
            if (
                _is_call(call, "CONTAINS", "INTERSECTS")
                and isinstance(other, exp.Literal)
                and not other.is_string
                and number_literal(other.this) in (0, 1)  # = 2 or = -1: never (nor its negation)
            ):
                holds = (number_literal(other.this) == 1) == isinstance(node, exp.EQ)
                predicate = _region_predicate(call, backend)
                return predicate if holds else exp.Not(this=exp.Paren(this=predicate))
        return node
    if _is_call(node, "CONTAINS", "INTERSECTS"):
        return exp.Case(
            ifs=[exp.If(this=_region_predicate(node, backend), true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
    if _is_call(node, "DISTANCE"):
        args = _call_args(node)
        if len(args) == 2:
            (ra1, dec1), (ra2, dec2) = _point(args[0]), _point(args[1])
        else:
            ra1, dec1, ra2, dec2 = args
        name = "q3c_dist" if backend == "postgres" else "starling_distance"
        return exp.Anonymous(this=name, expressions=[ra1, dec1, ra2, dec2])
    if _is_call(node, "COORD1", "COORD2"):
        ra, dec = _point(_call_args(node)[0])
        return ra if catalogue_name(node) == "COORD1" else dec
    return node
