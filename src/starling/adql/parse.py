"""Reading a filter: ADQL's condition syntax through sqlglot, with errors that say where and why."""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp

from starling.errors import StarlingError


class FilterSyntaxError(StarlingError):
    """An expression that is not a valid filter; says where (1-based line and column) and why."""

    def __init__(self, message: str, expression: str, line: int = 1, column: int = 1) -> None:
        self.message, self.expression, self.line, self.column = message, expression, line, column
        lines = expression.splitlines() or [""]
        pointer = lines[min(line, len(lines)) - 1] + "\n" + " " * max(column - 1, 0) + "^"
        super().__init__(f"line {line}, column {column}: {message}\n{pointer}")

    def problem(self) -> dict[str, object]:
        return {"loc": ["expression"], "msg": self.message, "line": self.line, "column": self.column}


def _unclosed_quote(expression: str) -> int | None:
    opened = None
    for index, char in enumerate(expression):
        if char == "'":
            opened = index if opened is None else None  # '' inside a string closes and reopens: fine
    return opened


def parse_condition(expression: str) -> Any:
    """The sqlglot tree of one condition; FilterSyntaxError (with line and column) if it is not one."""
    if not expression.strip():
        raise FilterSyntaxError("the filter is empty", expression)
    try:
        tree = sqlglot.parse_one(expression, into=exp.Condition)
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = str(first.get("description") or exc).replace(
            "Required keyword: 'expression' missing for", "something is missing after"
        )
        message = re.sub(
            r"<class 'sqlglot\.expressions\.(?:\w+\.)*(\w+)'>", lambda m: m.group(1).upper(), message
        )
        highlight = str(first.get("highlight") or "")
        column = int(first.get("col") or 1) - max(len(highlight) - 1, 0)
        raise FilterSyntaxError(message, expression, int(first.get("line") or 1), column) from None
    except sqlglot.errors.TokenError:
        quote = _unclosed_quote(expression)
        if quote is None:
            raise FilterSyntaxError("cannot read the expression", expression) from None
        line = expression.count("\n", 0, quote) + 1
        column = quote - (expression.rfind("\n", 0, quote) + 1) + 1
        raise FilterSyntaxError(
            "this string is not closed (a ' is missing)", expression, line, column
        ) from None
    return tree
