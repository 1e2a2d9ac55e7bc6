"""ADQL queries translated into the SQL of the store's backends, where they run (``query.py`` reads and
checks them): tables where each backend keeps them, ADQL's functions as each backend names them, and
the sky geometry as each computes it (q3c and pgSphere on PostgreSQL; registered functions behind a
declination band on SQLite: ``sqlite_functions.py``).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from starling.adql.catalogue import catalogue_name, function_arguments
from starling.adql.parse import Sql
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
    tree = tree.transform(lambda node: _maths(node, backend), copy=False)
    return str(tree.sql(dialect="sqlite" if backend == "sqlite" else "postgres"))


def _double(node: Sql) -> Sql:
    return exp.Cast(this=node, to=exp.DataType.build("double"))


def _maths(node: Sql, backend: Backend) -> Sql:
    """ADQL's functions where the backends name or type them otherwise (LOG is the natural logarithm;
    PostgreSQL rounds and truncates numerics only; SQLite has no COT and no TRUNCATE to decimals)."""
    if isinstance(node, exp.Log):
        base, value = (node.this, node.expression) if node.expression is not None else (None, node.this)
        if base is None:
            return exp.Ln(this=value)
        if isinstance(base, exp.Literal) and base.this == "10":
            return exp.Anonymous(this="log10" if backend == "sqlite" else "log", expressions=[value])
        return exp.Div(this=exp.Ln(this=value), expression=exp.Ln(this=base))
    if isinstance(node, (exp.Round, exp.Trunc)) and node.args.get("decimals") is not None:
        decimals = node.args["decimals"]
        if backend == "postgres":
            numeric = exp.Cast(this=node.this, to=exp.DataType.build("decimal"))
            name = "round" if isinstance(node, exp.Round) else "trunc"
            return _double(exp.Anonymous(this=name, expressions=[numeric, decimals]))
        if isinstance(node, exp.Trunc):
            return exp.Anonymous(this="starling_truncate", expressions=[node.this, decimals])
    if isinstance(node, exp.Rand):
        return exp.Anonymous(this="random" if backend == "postgres" else "starling_rand", expressions=[])
    if isinstance(node, exp.Cot) and backend == "sqlite":
        return exp.Anonymous(this="starling_cot", expressions=[node.this])
    return node


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
        return exp.EQ(
            this=exp.Anonymous(this="starling_polygon", expressions=[ra, dec, *region]),
            expression=exp.Literal.number(1),
        )
    raise ValueError("CONTAINS takes a POINT and a CIRCLE or POLYGON")


Q3C_POLYGON_MAX_DEG = 20.0  # q3c's polygon search refuses polygons wider than about 23 degrees


def _postgres_polygon(ra: Sql, dec: Sql, region: list[Sql]) -> Sql:
    """A point in a polygon on PostgreSQL: pgSphere's exact test, behind q3c's indexed one when the
    polygon is small enough for q3c. (The vertices are constants: the checks saw to it.)"""
    values = [float(v.this) if isinstance(v, exp.Literal) else -float(v.this.this) for v in region]
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
            ):
                holds = (other.this == "1") == isinstance(node, exp.EQ)
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
