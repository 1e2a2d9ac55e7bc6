"""The filter language as the stream filters use it: an ADQL condition compiled to column operations.

The front end reads and checks the condition (``parse.py``, ``checks.py``, ``catalogue.py``: the
syntax, names, functions, types and limits, with the line and column of a fault); the numpy back end
(``numpy_backend.py``) compiles the checked tree to operations on a batch's columns.

Supported: arithmetic (+ - * / %, unary -), ``||``, comparisons (= <> != < <= > >=), AND, OR, NOT,
[NOT] BETWEEN, [NOT] IN (a list), IS [NOT] NULL, [NOT] LIKE / ILIKE [ESCAPE], the ADQL math functions, LOWER,
UPPER, COALESCE, and the geometry: POINT, CIRCLE, POLYGON, DISTANCE, CONTAINS, INTERSECTS, COORD1,
COORD2 (ICRS, degrees).
"""

from __future__ import annotations

from starling.adql.checks import check_condition, too_deep
from starling.adql.fields import FieldCatalogue, catalogue
from starling.adql.numpy_backend import Columns, CompiledFilter, compile_checked
from starling.adql.parse import Sql, parse_condition
from starling.adql.values import Vec

__all__ = ["Columns", "CompiledFilter", "compile_filter", "compile_tree"]


def compile_filter(expression: str, fields: FieldCatalogue | None = None) -> CompiledFilter:
    """Parse and check ``expression``; raises FilterSyntaxError naming the position of the fault."""
    return compile_tree(parse_condition(expression), expression, fields)


def compile_tree(
    tree: Sql, expression: str, fields: FieldCatalogue | None = None, parameters: dict[str, Vec] | None = None
) -> CompiledFilter:
    """Check and compile a parsed condition. ``parameters`` give the values of its placeholders
    (``:n0`` ...), as columns of shape (k, 1): the compiled filter then judges k filters of one shape
    at once."""
    values = parameters or {}
    kinds = {name: value.kind for name, value in values.items()}
    checked = check_condition(tree, expression, fields or catalogue(), kinds)
    try:
        return compile_checked(checked, values)
    except RecursionError:  # within the checks' MAX_DEPTH, only when called from very deep in a stack
        raise too_deep(expression) from None
