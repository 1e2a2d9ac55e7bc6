"""Reading a filter: ADQL's condition syntax through sqlglot, with errors that say where and why.

The front end's first step, shared by every back end. Before sqlglot reads the text, its size and its
bracket nesting are held to limits: sqlglot's parser is recursive descent (about 20 Python frames per
bracket), so unbounded nesting would end in a RecursionError, and a huge text would cost seconds.
"""

from __future__ import annotations

import math
import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from starling.adql.catalogue import function_name
from starling.errors import StarlingError

# sqlglot's node classes (exp.Expression and its many subclasses); typed loosely across its versions.
Sql = Any

MAX_TOKENS = 50_000  # names, values, operators and brackets: some 12,000 comparisons joined by AND
MAX_NESTING = 30  # brackets inside brackets (a function's brackets included)
MAX_DEPTH = 100  # levels of operators, functions and brackets; an AND/OR chain counts as one level
TOO_DEEP = (
    f"the filter is nested too deeply: more than {MAX_DEPTH} levels of operators, functions and "
    "brackets inside each other"
)

_OPENING = ("L_PAREN", "L_BRACKET", "L_BRACE")  # sqlglot's token types, by name
_CLOSING = ("R_PAREN", "R_BRACKET", "R_BRACE")
_PREFIX = ("NOT", "DASH", "PLUS")  # NOT NOT NOT ... or - - - ...: a level each, without a bracket
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class FilterSyntaxError(StarlingError):
    """An expression that is not a valid filter; says where (1-based line and column) and why."""

    def __init__(self, message: str, expression: str, line: int = 1, column: int = 1) -> None:
        self.message, self.expression, self.line, self.column = message, expression, line, column
        lines = expression.splitlines() or [""]
        pointer = lines[min(line, len(lines)) - 1] + "\n" + " " * max(column - 1, 0) + "^"
        super().__init__(f"line {line}, column {column}: {message}\n{pointer}")

    def problem(self) -> dict[str, object]:
        return {"loc": ["expression"], "msg": self.message, "line": self.line, "column": self.column}


def line_column(expression: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character of the expression."""
    line_start = expression.rfind("\n", 0, offset) + 1
    return expression.count("\n", 0, offset) + 1, offset - line_start + 1


def position(expression: str, node: Sql) -> tuple[int, int]:
    """Where the node starts: the earliest token sqlglot placed in it, else its function name."""
    starts = [
        int(candidate.meta["start"])
        for candidate in (node, *node.find_all(exp.Identifier, exp.Literal))
        if isinstance(getattr(candidate, "meta", {}).get("start"), int)
    ]
    found = min(starts) if starts else -1
    if found < 0 and isinstance(node, exp.Func):
        found = expression.upper().find(function_name(node))
    if found < 0:
        return 1, 1
    if found > 0 and expression[found - 1] in "'\"":  # a quoted token starts at its quote
        found -= 1
    return line_column(expression, found)


def fault(expression: str, node: Sql, message: str) -> FilterSyntaxError:
    """The error for a fault in ``node``, placed where the node starts."""
    return FilterSyntaxError(message, expression, *position(expression, node))


def _unclosed_quote(expression: str) -> int | None:
    opened = None
    for index, char in enumerate(expression):
        if char == "'":
            opened = index if opened is None else None  # '' inside a string closes and reopens: fine
    return opened


def number_literal(text: str) -> int | float:
    """A numeric literal's value. A whole number stays exact within 64 bits; beyond, it is a real
    (a double), kept beyond the 64-bit range (so ``alert_id < 99999999999999999999999`` holds for
    every id, and ``alert_id = -9223372036854775809`` for none); beyond a double, an infinity."""
    try:
        value = int(text)
    except ValueError:
        return float(text)  # 1.5, 1e3; 1e400 is an infinity
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    try:
        real = float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    if abs(real) == 2.0**63 and abs(value) != 2**63:  # rounded onto 2**63: one step further out
        real = math.nextafter(real, math.copysign(math.inf, real))
    return real


def signed_numbers(tree: Sql) -> Sql:
    """The tree with each minus written straight before a number made part of the number: ``-5`` is the
    literal -5, as in SQL, not the negation of 5. So int64's least value is a whole number, not the
    negation of 9223372036854775808 (a real, beyond int64), for every reader of the tree: the checks'
    constants, the shared plan's parameters and the SQL of a TAP query. The literal keeps the place
    sqlglot gave the digits (``spans.py`` widens it over the minus)."""
    for neg in list(tree.find_all(exp.Neg)):
        number = neg.this
        if isinstance(number, exp.Literal) and not number.is_string and not number.this.startswith("-"):
            signed = exp.Literal(this=f"-{number.this}", is_string=False)
            signed.meta.update(number.meta)
            if neg is tree:
                return signed
            neg.replace(signed)
    return tree


def _prefix_runs(tokens: list[Any], expression: str) -> None:
    """Refuses more than MAX_DEPTH prefix operators in a row (the parser recurses on each)."""
    run = 0
    for token in tokens:
        run = run + 1 if token.token_type.name in _PREFIX else 0
        if run > MAX_DEPTH + 1:  # the first may be a binary minus
            raise FilterSyntaxError(TOO_DEEP, expression, *line_column(expression, token.start))


def within_limits(tokens: list[Any], expression: str) -> int:
    """Refuses a text over the size or nesting limits; returns where its brackets are deepest."""
    _prefix_runs(tokens, expression)
    if len(tokens) > MAX_TOKENS:
        raise FilterSyntaxError(
            f"the filter is too long: more than {MAX_TOKENS:,} names, values and operators; "
            "split it into several filters",
            expression,
            *line_column(expression, tokens[MAX_TOKENS].start),
        )
    depth, deepest, deepest_at = 0, 0, 0
    for token in tokens:
        if token.token_type.name in _OPENING:
            depth += 1
            if depth > MAX_NESTING:
                raise FilterSyntaxError(
                    f"the filter is nested too deeply: more than {MAX_NESTING} brackets inside each other",
                    expression,
                    *line_column(expression, token.start),
                )
            if depth > deepest:
                deepest, deepest_at = depth, token.start
        elif token.token_type.name in _CLOSING:
            depth -= 1
    return deepest_at


def syntax_error(exc: sqlglot.errors.ParseError, expression: str) -> FilterSyntaxError:
    first = exc.errors[0] if exc.errors else {}
    message = str(first.get("description") or exc).replace(
        "Required keyword: 'expression' missing for", "something is missing after"
    )
    message = re.sub(
        r"<class 'sqlglot\.expressions\.(?:\w+\.)*(\w+)'>", lambda m: m.group(1).upper(), message
    )
    highlight = str(first.get("highlight") or "")
    column = int(first.get("col") or 1) - max(len(highlight) - 1, 0)
    return FilterSyntaxError(message, expression, int(first.get("line") or 1), column)


def unclosed_string(expression: str) -> FilterSyntaxError:
    quote = _unclosed_quote(expression)
    if quote is None:
        return FilterSyntaxError("cannot read the expression", expression)
    return FilterSyntaxError(
        "this string is not closed (a ' is missing)", expression, *line_column(expression, quote)
    )


def parse_condition(expression: str) -> Any:
    """The sqlglot tree of one condition; FilterSyntaxError (with line and column) if it is not one."""
    if not expression.strip():
        raise FilterSyntaxError("the filter is empty", expression)
    dialect = Dialect.get_or_raise(None)
    deepest_at = 0
    try:
        tokens = dialect.tokenize(expression)
        deepest_at = within_limits(tokens, expression)
        parsed = dialect.parser().parse_into(exp.Condition, tokens, expression)
    except sqlglot.errors.ParseError as exc:
        raise syntax_error(exc, expression) from None
    except sqlglot.errors.TokenError:
        raise unclosed_string(expression) from None
    except RecursionError:  # nesting without brackets (NOT NOT NOT ...) can still exhaust the stack
        raise FilterSyntaxError(
            f"the filter is nested too deeply for the parser (at most {MAX_NESTING} brackets and "
            f"{MAX_DEPTH} levels inside each other)",
            expression,
            *line_column(expression, deepest_at),
        ) from None
    trees = [signed_numbers(tree) for tree in parsed if tree is not None]
    if not trees:
        raise FilterSyntaxError("the filter is empty", expression)
    return trees[0] if len(trees) == 1 else exp.Block(expressions=trees)
