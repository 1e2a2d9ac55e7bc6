"""The functions of the filter language: names, arities, argument and result types (data, no evaluation).

The checks (``checks.py``) hold every call to this catalogue; the back ends (numpy columns today, SQL
for TAP) implement each function by its name here, so the two cannot disagree on what is allowed.

Types: ``number``, ``string``, ``bool``, ``point``, ``circle``, ``polygon``; ``null`` (a NULL literal)
fits anywhere. An argument of type ``whole`` is a constant whole number (ROUND's decimals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

Sql = Any


@dataclass(frozen=True, slots=True)
class Signature:
    arguments: tuple[str, ...]  # the type of each argument
    result: str


@dataclass(frozen=True, slots=True)
class Function:
    """A function and its signatures, told apart by their number of arguments. When no signature has
    as many arguments as a call, the error names the last signature's count."""

    name: str
    signatures: tuple[Signature, ...]
    frame: bool = False  # takes ADQL's optional coordinate system as its first argument (ICRS served)
    special: bool = False  # arguments beyond a signature's reach: the checks have a rule of their own


def _maths(name: str, arguments: int = 1) -> Function:
    return Function(name, (Signature(("number",) * arguments, "number"),))


_N = "number"
_ONE_NUMBER = ("ABS", "CEILING", "FLOOR", "DEGREES", "RADIANS", "EXP", "SQRT")
_TRIGONOMETRY = ("ACOS", "ASIN", "ATAN", "COS", "SIN", "TAN", "COT")
FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        *(_maths(name) for name in (*_ONE_NUMBER, *_TRIGONOMETRY)),
        _maths("POWER", 2),
        _maths("ATAN2", 2),
        _maths("PI", 0),
        Function("LOG", (Signature((_N,), _N), Signature((_N, _N), _N))),  # LOG(x) natural; LOG(base, x)
        Function("ROUND", (Signature((_N, "whole"), _N), Signature((_N,), _N))),
        Function("TRUNCATE", (Signature((_N, "whole"), _N), Signature((_N,), _N))),
        Function("RAND", (Signature((), _N), Signature(("whole",), _N))),  # RAND(seed)
        Function("LOWER", (Signature(("string",), "string"),)),
        Function("UPPER", (Signature(("string",), "string"),)),
        Function("COALESCE", (), special=True),  # one or more values of one type
        Function("POINT", (Signature((_N, _N), "point"),), frame=True),
        Function(
            "CIRCLE", (Signature(("point", _N), "circle"), Signature((_N, _N, _N), "circle")), frame=True
        ),
        Function("POLYGON", (), frame=True, special=True),  # three or more constant (ra, dec) vertices
        Function("DISTANCE", (Signature(("point", "point"), _N), Signature((_N,) * 4, _N))),
        Function("CONTAINS", (Signature(("point", "circle|polygon"), _N),), special=True),
        Function("INTERSECTS", (Signature(("point", "circle|polygon"), _N),), special=True),  # either order
        Function("COORD1", (Signature(("point",), _N),)),
        Function("COORD2", (Signature(("point",), _N),)),
    ]
}

# sqlglot reads the functions it knows into classes of its own; the others stay Anonymous, by name.
_SQLGLOT_CLASSES: dict[type[Sql], str] = {
    exp.Abs: "ABS",
    exp.Ceil: "CEILING",
    exp.Floor: "FLOOR",
    exp.Degrees: "DEGREES",
    exp.Radians: "RADIANS",
    exp.Exp: "EXP",
    exp.Sqrt: "SQRT",
    exp.Acos: "ACOS",
    exp.Asin: "ASIN",
    exp.Atan: "ATAN",
    exp.Cos: "COS",
    exp.Sin: "SIN",
    exp.Tan: "TAN",
    exp.Cot: "COT",
    exp.Pow: "POWER",
    exp.Atan2: "ATAN2",
    exp.Pi: "PI",
    exp.Log: "LOG",  # LOG10(x) reads as LOG(10, x)
    exp.Round: "ROUND",
    exp.Trunc: "TRUNCATE",
    exp.Rand: "RAND",
    exp.Lower: "LOWER",
    exp.Upper: "UPPER",
    exp.Coalesce: "COALESCE",
}

GEOMETRY_FUNCTIONS = ("POINT", "CIRCLE", "POLYGON", "DISTANCE", "CONTAINS", "INTERSECTS", "COORD1", "COORD2")
# As documented (MOD is the operator %; LOG10 is LOG with base 10); the order of suggestions.
KNOWN_FUNCTIONS = [
    *("ABS", "CEILING", "DEGREES", "EXP", "FLOOR", "LOG", "LOG10", "MOD", "PI", "POWER", "RADIANS", "SQRT"),
    *("RAND", "ROUND", "TRUNCATE", "ACOS", "ASIN", "ATAN", "ATAN2", "COS", "SIN", "COT", "TAN"),
    *("LOWER", "UPPER", "COALESCE", *GEOMETRY_FUNCTIONS),
]


def function_name(node: Sql) -> str:
    """The function's name as messages give it (sqlglot's spelling for the functions it knows)."""
    return str(node.name).upper() if isinstance(node, exp.Anonymous) else str(node.sql_name())


def catalogue_name(node: Sql) -> str:
    """The function's name in this catalogue, or its own name if the catalogue lacks it."""
    return _SQLGLOT_CLASSES.get(type(node)) or function_name(node)


def function_arguments(node: Sql) -> list[Sql]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    if isinstance(node, exp.Coalesce):
        return [node.this, *node.expressions]
    names = ("this", "expression", "decimals")
    return [node.args[n] for n in names if node.args.get(n) is not None]


def suggestions(name: str) -> list[str]:
    """Known functions a misspelt name may have meant."""
    return [known for known in KNOWN_FUNCTIONS if known.startswith(name[:3])]


def signature_for(function: Function, count: int) -> Signature | None:
    return next((s for s in function.signatures if len(s.arguments) == count), None)
