"""The strict checks of the front end: names, functions and their arities, types, nesting.

A parsed condition is checked here once, for every back end: each field is resolved in the field
catalogue, each function in the function catalogue (``catalogue.py``), each operand's type against
what its operator takes, and the tree's depth against a limit. The result, ``Checked``, tells a back
end the type of every node, the constant value of literals, the field of every column, the function
and arguments of every call and the operands of every AND/OR chain (flattened without recursion: a
chain of 5,000 ANDs is one n-ary node). A back end then compiles without checking anything again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlglot import exp

from starling.adql.catalogue import (
    FUNCTIONS,
    catalogue_name,
    function_arguments,
    function_name,
    signature_for,
    suggestions,
)
from starling.adql.fields import FieldCatalogue, FieldDef
from starling.adql.like import LikePattern, PatternError
from starling.adql.parse import MAX_DEPTH, TOO_DEEP, FilterSyntaxError, Sql, fault, number_literal

MAX_DECIMALS = 300  # ROUND and TRUNCATE: 10**300 is still a double

COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
CONNECTIVES = (exp.And, exp.Or)

Rule = TypeVar("Rule")


def rule_for(rules: Mapping[type[Sql], Rule], node: Sql) -> Rule | None:
    """The rule for the node's class, or for the nearest of its base classes that has one."""
    for cls in type(node).__mro__:
        rule = rules.get(cls)
        if rule is not None:
            return rule
    return None


def chain_operands(node: Sql) -> list[Sql]:
    """The operands of a chain of one connective (``a AND b AND c``), left to right, by a loop."""
    kind, operands, pending = type(node), [], [node]
    while pending:
        current = pending.pop()
        if type(current) is kind:
            pending.append(current.expression)  # taken after the left side, which comes first
            pending.append(current.this)
        else:
            operands.append(current)
    return operands


def check_depth(tree: Sql, expression: str) -> None:
    """Refuses a tree deeper than MAX_DEPTH (the back ends recurse once per level, not per operand)."""
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise fault(expression, node, TOO_DEEP)
        chain = isinstance(node, CONNECTIVES)
        for child in reversed(list(node.iter_expressions())):  # the leftmost first, to name it
            pending.append((child, depth if chain and type(child) is type(node) else depth + 1))


def too_deep(expression: str) -> FilterSyntaxError:
    """Within the limits, but the stack it was compiled from was already deep (a rare caller)."""
    return FilterSyntaxError(
        f"the filter is nested too deeply to be compiled here (at most {MAX_DEPTH} levels)", expression
    )


@dataclass
class Checked:
    """A checked condition: its tree, and what the checks learnt about each node (by identity)."""

    tree: Sql
    expression: str
    types: dict[int, str] = field(default_factory=dict)
    constants: dict[int, Any] = field(default_factory=dict)
    fields: dict[int, FieldDef] = field(default_factory=dict)
    chains: dict[int, list[Sql]] = field(default_factory=dict)
    calls: dict[int, tuple[str, list[Sql]]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def type(self, node: Sql) -> str:
        return self.types[id(node)]

    def constant(self, node: Sql) -> Any:
        """The Python value of a literal (or of a constant made of literals), else None."""
        return self.constants.get(id(node))

    def field_of(self, node: Sql) -> FieldDef:
        return self.fields[id(node)]

    def operands(self, node: Sql) -> list[Sql]:
        return self.chains[id(node)]

    def call(self, node: Sql) -> tuple[str, list[Sql]]:
        """The function's catalogue name and its arguments (without a coordinate system)."""
        return self.calls[id(node)]


def check_condition(
    tree: Sql, expression: str, fields: FieldCatalogue, parameters: Mapping[str, str] | None = None
) -> Checked:
    """Checks a parsed condition; ``parameters`` give the types of its placeholders (``:n0`` ...)."""
    check_depth(tree, expression)
    checker = _Checker(Checked(tree, expression), fields, parameters or {})
    try:
        kind = checker.type(tree)
    except RecursionError:  # within MAX_DEPTH, only when called from very deep in a stack
        raise too_deep(expression) from None
    if kind != "bool":
        raise checker.fail(
            tree, f"a filter is a condition (true or false), not a {kind}; compare it with something"
        )
    return checker.checked


class _Checker:
    def __init__(self, checked: Checked, fields: FieldCatalogue, parameters: Mapping[str, str]) -> None:
        self.checked = checked
        self.catalogue = fields
        self.parameters = parameters

    def fail(self, node: Sql, message: str) -> FilterSyntaxError:
        return fault(self.checked.expression, node, message)

    def type(self, node: Sql) -> str:
        """The node's type, once its own checks and its operands' have passed."""
        rule = rule_for(_RULES, node)
        if rule is None:
            raise self.fail(node, f"{node.sql()!r} is not allowed in a filter (a filter is one condition)")
        kind = rule(self, node)
        self.checked.types[id(node)] = kind
        return kind

    def expect(self, node: Sql, *types: str) -> str:
        return self._fits(node, self.type(node), *types)

    def _fits(self, node: Sql, kind: str, *types: str) -> str:
        if kind not in (*types, "null"):
            raise self.fail(
                node, f"{node.sql(dialect='')} is a {kind}, where a {' or '.join(types)} is needed"
            )
        return kind

    def constant(self, node: Sql) -> Any:
        return self.checked.constants.get(id(node))

    # -- operators -----------------------------------------------------------------------------------

    def _paren(self, node: Sql) -> str:
        kind = self.type(node.this)
        if (value := self.constant(node.this)) is not None:
            self.checked.constants[id(node)] = value
        return kind

    def _chain(self, node: Sql) -> str:
        operands = chain_operands(node)
        self.checked.chains[id(node)] = operands
        for operand in operands:
            self.expect(operand, "bool")
        return "bool"

    def _not(self, node: Sql) -> str:
        self.expect(node.this, "bool")
        return "bool"

    def _comparable(self, node: Sql, a: Sql, kind_a: str, b: Sql, kind_b: str) -> None:
        for side, kind in ((a, kind_a), (b, kind_b)):
            self._fits(side, kind, "number", "string")
        if "null" not in (kind_a, kind_b) and kind_a != kind_b:
            raise self.fail(node, f"cannot compare a {kind_a} ({a.sql()}) with a {kind_b} ({b.sql()})")

    def _comparison(self, node: Sql) -> str:
        a, b = node.this, node.expression
        kind_a, kind_b = self.type(a), self.type(b)
        self._comparable(node, a, kind_a, b, kind_b)
        return "bool"

    def _between(self, node: Sql) -> str:
        kind = self.type(node.this)
        for bound in (node.args["low"], node.args["high"]):
            self._comparable(node, node.this, kind, bound, self.type(bound))
        return "bool"

    def _in(self, node: Sql) -> str:
        if (
            node.args.get("query")
            or node.args.get("unnest")
            or node.args.get("field")
            or not node.expressions
        ):
            raise self.fail(node, "IN takes a list of values here, not a query")
        kind = self.type(node.this)
        for item in node.expressions:
            self._comparable(node, node.this, kind, item, self.type(item))
        return "bool"

    def _is(self, node: Sql) -> str:
        if not isinstance(node.expression, exp.Null):
            raise self.fail(node, "IS is followed by NULL or NOT NULL here")
        kind = self.type(node.this)
        if kind not in ("number", "string", "null"):
            raise self.fail(node, f"IS NULL applies to a value, not a {kind}")
        return "bool"

    def _like(self, node: Sql) -> str:
        like, escape = (node.this, node.expression) if isinstance(node, exp.Escape) else (node, None)
        if not isinstance(like, (exp.Like, exp.ILike)):
            raise self.fail(node, "ESCAPE follows a LIKE pattern")
        self.expect(like.this, "string")
        self.type(like.expression)
        pattern, mark = self.constant(like.expression), None
        if not isinstance(pattern, str):
            raise self.fail(like.expression, "LIKE takes a string pattern")
        if escape is not None:
            self.type(escape)
            mark = self.constant(escape)
            if not isinstance(mark, str) or len(mark) != 1:
                raise self.fail(escape, "ESCAPE takes one character")
        try:
            LikePattern(pattern, mark)
        except PatternError as exc:
            raise self.fail(like.expression, str(exc)) from None
        return "bool"

    def _arithmetic(self, node: Sql) -> str:
        self.expect(node.this, "number")
        self.expect(node.expression, "number")
        return "number"

    def _neg(self, node: Sql) -> str:
        self.expect(node.this, "number")
        if (value := self.constant(node.this)) is not None:
            # -(-9223372036854775808) is beyond int64: a real, as that literal would be
            self.checked.constants[id(node)] = (
                number_literal(str(-value)) if isinstance(value, int) else -value
            )
        return "number"

    def _concatenation(self, node: Sql) -> str:
        self.expect(node.this, "string")
        self.expect(node.expression, "string")
        return "string"

    # -- values --------------------------------------------------------------------------------------

    def _literal(self, node: Sql) -> str:
        if node.is_string:
            self.checked.constants[id(node)] = node.this
            return "string"
        # Whole numbers stay exact (ids beyond 2**53); beyond int64, a real kept beyond it.
        self.checked.constants[id(node)] = number_literal(node.this)
        return "number"

    def _null(self, node: Sql) -> str:
        return "null"

    def _placeholder(self, node: Sql) -> str:
        if node.name not in self.parameters:
            raise self.fail(node, f"{node.sql()!r} is not allowed in a filter (a filter is one condition)")
        return self.parameters[node.name]

    def _column(self, node: Sql) -> str:
        name = ".".join(p.name if p.args.get("quoted") else p.name.lower() for p in node.parts)
        found = self.catalogue.resolve(name)
        if found is None:
            near = self.catalogue.nearest(name)
            hint = f"; did you mean {', '.join(near)}?" if near else "; see `starling filter fields`"
            raise self.fail(node, f"unknown field {name!r}{hint}")
        self.checked.fields[id(node)] = found
        self.checked.used.add(found.name)
        return found.kind

    # -- functions -----------------------------------------------------------------------------------

    def _function(self, node: Sql) -> str:
        name, args = catalogue_name(node), function_arguments(node)
        function = FUNCTIONS.get(name)
        if function is None:
            if name == "BOX":
                raise self.fail(node, "BOX is deprecated in ADQL 2.1 and not supported; use POLYGON")
            near = suggestions(name)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise self.fail(node, f"unknown function {name}{hint}")
        if function.frame:
            args = self._without_frame(args)
        self.checked.calls[id(node)] = (name, args)
        if function.special:
            return _SPECIAL[name](self, node, name, args)
        signature = signature_for(function, len(args))
        if signature is None:
            count = len(function.signatures[-1].arguments)
            raise self.fail(
                node,
                f"{function_name(node)} takes {count} argument{'s' if count != 1 else ''}, not {len(args)}",
            )
        for arg, wanted in zip(args, signature.arguments, strict=True):
            self.expect(arg, *wanted.replace("whole", "number").split("|"))
            if wanted == "whole":
                self._whole(node, name, arg)
        if name == "PI":
            self.checked.constants[id(node)] = math.pi
        return signature.result

    def _whole(self, node: Sql, name: str, arg: Sql) -> None:
        value = self.constant(arg)
        if name == "RAND" and not (isinstance(value, int) and value >= 0):
            raise self.fail(node, "RAND takes a constant whole number (0 or more) as its seed")
        if not isinstance(value, int):
            raise self.fail(node, f"{function_name(node)} takes a whole number of decimals")
        if name != "RAND" and abs(value) > MAX_DECIMALS:
            raise self.fail(
                arg, f"{function_name(node)} takes at most {MAX_DECIMALS} decimals (either side of the point)"
            )

    def _without_frame(self, args: list[Sql]) -> list[Sql]:
        """ADQL's optional first argument, the coordinate system: only ICRS (or empty) is served."""
        if args and isinstance(args[0], exp.Literal) and args[0].is_string:
            frame = args[0].this.strip().upper()
            if frame not in ("", "ICRS") and not frame.startswith("ICRS "):
                raise self.fail(args[0], f"coordinate system {args[0].this!r} is not served; alerts are ICRS")
            return args[1:]
        return args

    def _coalesce(self, node: Sql, name: str, args: list[Sql]) -> str:
        kinds = {self.type(a) for a in args} - {"null"}
        if len(kinds) > 1 or not kinds <= {"number", "string"}:
            raise self.fail(node, "COALESCE takes values of one type")
        return kinds.pop() if kinds else "number"

    def _polygon(self, node: Sql, name: str, args: list[Sql]) -> str:
        for arg in args:
            self.type(arg)
        values = [self.constant(a) for a in args]
        if len(values) < 6 or len(values) % 2 or not all(isinstance(v, (int, float)) for v in values):
            raise self.fail(node, "POLYGON takes three or more vertices as constant ra, dec pairs (degrees)")
        return "polygon"

    def _region(self, node: Sql, name: str, args: list[Sql]) -> str:
        """CONTAINS(point, region); INTERSECTS takes them in either order."""
        if len(args) != 2:
            raise self.fail(node, f"{name} takes 2 arguments, not {len(args)}")
        first, second = self.type(args[0]), self.type(args[1])
        if name == "INTERSECTS" and first in ("circle", "polygon") and second == "point":
            first, second = second, first
        if first != "point" or second not in ("circle", "polygon"):
            raise self.fail(node, f"{name} here takes a POINT and a CIRCLE or POLYGON")
        return "number"


_RULES: dict[type[Sql], Callable[[_Checker, Sql], str]] = {
    exp.Paren: _Checker._paren,
    exp.And: _Checker._chain,
    exp.Or: _Checker._chain,
    exp.Not: _Checker._not,
    **{cls: _Checker._comparison for cls in COMPARISONS},
    exp.Between: _Checker._between,
    exp.In: _Checker._in,
    exp.Is: _Checker._is,
    exp.Like: _Checker._like,
    exp.ILike: _Checker._like,
    exp.Escape: _Checker._like,
    **{cls: _Checker._arithmetic for cls in ARITHMETIC},
    exp.Neg: _Checker._neg,
    exp.DPipe: _Checker._concatenation,
    exp.Literal: _Checker._literal,
    exp.Null: _Checker._null,
    exp.Placeholder: _Checker._placeholder,
    exp.Column: _Checker._column,
    exp.Func: _Checker._function,
}
_SPECIAL: dict[str, Callable[[_Checker, Sql, str, list[Sql]], str]] = {
    "COALESCE": _Checker._coalesce,
    "POLYGON": _Checker._polygon,
    "CONTAINS": _Checker._region,
    "INTERSECTS": _Checker._region,
}
