"""The numpy back end: a checked condition compiled to column operations, for the stream filters.

Every node becomes a function of the batch's columns (``AlertColumns``) that returns a whole column,
so a filter costs a few numpy operations per batch, not a Python call per alert. Sub-expressions are
shared between all the filters that run on a batch (``mag < 19`` in ten filters is computed once),
through the columns' memo. An AND/OR chain is one n-ary node: its operands are combined by a loop,
in SQL's three-valued logic, so a chain of thousands of terms costs no recursion.

Nothing is checked here: ``checks.py`` has refused every fault before, with its position.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlglot import exp

from starling.adql.checks import ARITHMETIC, COMPARISONS, Checked, rule_for
from starling.adql.fields import AlertColumns, FieldDef
from starling.adql.numpy_functions import FUNCTIONS, Evaluate, Node, divide, literal
from starling.adql.parse import Sql
from starling.adql.values import Truth, Vec, number_column
from starling.alert.model import Alert


class Columns(Protocol):
    def __len__(self) -> int: ...

    def column(self, field: FieldDef) -> Vec: ...


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


_COMPARE: dict[type[Sql], Callable[[Any, Any], Any]] = {
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
    exp.Div: divide,  # ADQL's / is real division, whole numbers or not
    exp.Mod: np.fmod,  # SQL's MOD keeps the sign of the dividend
}
_UNKNOWN = Truth(np.bool_(False), np.bool_(False))
_COMPILATIONS = itertools.count()


def compile_checked(checked: Checked, parameters: dict[str, Vec] | None = None) -> CompiledFilter:
    """The checked condition as column operations. ``parameters`` give the values of its placeholders
    (``:n0`` ...) as columns of shape (k, 1): the compiled filter then judges k filters at once."""
    compiler = _Compiler(checked, parameters or {})
    root = compiler.truth(checked.tree)
    return CompiledFilter(checked.expression, frozenset(checked.used), root)


class _Compiler:
    def __init__(self, checked: Checked, parameters: dict[str, Vec]) -> None:
        self.checked = checked
        self.parameters = parameters
        # Sub-expressions with parameters belong to this compilation; the others are shared by all.
        self.namespace = f"{next(_COMPILATIONS)}|"

    def compile(self, node: Sql) -> Node:
        rule = rule_for(_RULES, node)
        assert rule is not None, f"{type(node).__name__} passed the checks but has no rule"
        compiled = rule(self, node)
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

    def truth(self, node: Sql) -> Evaluate:
        """A condition's evaluation; NULL where a condition is expected is unknown."""
        compiled = self.compile(node)
        return compiled.run if compiled.type != "null" else lambda c: _UNKNOWN

    # -- conditions ----------------------------------------------------------------------------------

    def _paren(self, node: Sql) -> Node:
        return self.compile(node.this)

    def _chain(self, node: Sql) -> Node:
        first, *rest = [self.truth(operand) for operand in self.checked.operands(node)]
        combine = Truth.both if isinstance(node, exp.And) else Truth.either

        def chain(c: Any) -> Truth:  # one loop over the operands, however long the chain
            result: Truth = first(c)
            for operand in rest:
                result = combine(result, operand(c))
            return result

        return Node("bool", chain)

    def _not(self, node: Sql) -> Node:
        inner = self.truth(node.this)
        return Node("bool", lambda c: inner(c).negate())

    def _compare(self, compare: Callable[[Any, Any], Any], a: Sql, b: Sql) -> Evaluate:
        left, right = self.compile(a).run, self.compile(b).run

        def run(c: Any) -> Truth:
            x, y = left(c), right(c)
            return Truth.of(compare(x.values, y.values), x.null | y.null)

        return run

    def _comparison(self, node: Sql) -> Node:
        return Node("bool", self._compare(_COMPARE[type(node)], node.this, node.expression))

    def _between(self, node: Sql) -> Node:
        low = self._compare(operator.ge, node.this, node.args["low"])
        high = self._compare(operator.le, node.this, node.args["high"])
        return Node("bool", lambda c: low(c).both(high(c)))

    def _in(self, node: Sql) -> Node:
        first, *rest = [self._compare(operator.eq, node.this, item) for item in node.expressions]

        def any_of(c: Any) -> Truth:
            result: Truth = first(c)
            for option in rest:
                result = result.either(option(c))
            return result

        return Node("bool", any_of)

    def _is(self, node: Sql) -> Node:
        inner = self.compile(node.this).run
        return Node("bool", lambda c: (lambda v: Truth(v.null, ~v.null))(inner(c)))

    def _like(self, node: Sql) -> Node:
        subject = self.compile(node.this).run
        pattern = "".join(
            ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
            for ch in self.checked.constant(node.expression)
        )
        regex = re.compile(pattern, re.DOTALL | (re.IGNORECASE if isinstance(node, exp.ILike) else 0))

        def run(c: Any) -> Truth:
            v = subject(c)
            values = np.atleast_1d(v.values)
            matched = np.fromiter(
                (regex.fullmatch(s) is not None for s in values), dtype=bool, count=len(values)
            )
            return Truth.of(matched if np.ndim(v.values) else matched[0], v.null)

        return Node("bool", run)

    # -- values --------------------------------------------------------------------------------------

    def _arithmetic(self, node: Sql) -> Node:
        left, right = self.compile(node.this).run, self.compile(node.expression).run
        apply = _ARITHMETIC[type(node)]

        def run(c: Any) -> Vec:
            x, y = left(c), right(c)
            return number_column(apply(x.values, y.values), x.null | y.null)

        return Node("number", run)

    def _neg(self, node: Sql) -> Node:
        constant = self.checked.constant(node)
        if constant is not None:
            return literal(constant)
        inner = self.compile(node.this).run
        return Node("number", lambda c: (lambda v: Vec(-v.values, v.null, "number"))(inner(c)))

    def _concatenation(self, node: Sql) -> Node:
        left, right = self.compile(node.this).run, self.compile(node.expression).run
        return Node(
            "string",
            lambda c: (lambda a, b: Vec(a.values + b.values, a.null | b.null, "string"))(left(c), right(c)),
        )

    def _literal(self, node: Sql) -> Node:
        return literal(self.checked.constant(node))

    def _null(self, node: Sql) -> Node:
        return Node("null", lambda c: Vec.constant(None, "number"))

    def _placeholder(self, node: Sql) -> Node:
        parameter = self.parameters[node.name]
        return Node(parameter.kind, lambda c: parameter)

    def _column(self, node: Sql) -> Node:
        found = self.checked.field_of(node)
        return Node(found.kind, lambda c: c.column(found))

    def _function(self, node: Sql) -> Node:
        name, args = self.checked.call(node)
        if (constant := self.checked.constant(node)) is not None:
            return literal(constant)
        return FUNCTIONS[name](self, node, name, args)


_RULES: dict[type[Sql], Callable[[_Compiler, Sql], Node]] = {
    exp.Paren: _Compiler._paren,
    exp.And: _Compiler._chain,
    exp.Or: _Compiler._chain,
    exp.Not: _Compiler._not,
    **{cls: _Compiler._comparison for cls in COMPARISONS},
    exp.Between: _Compiler._between,
    exp.In: _Compiler._in,
    exp.Is: _Compiler._is,
    exp.Like: _Compiler._like,
    exp.ILike: _Compiler._like,
    **{cls: _Compiler._arithmetic for cls in ARITHMETIC},
    exp.Neg: _Compiler._neg,
    exp.DPipe: _Compiler._concatenation,
    exp.Literal: _Compiler._literal,
    exp.Null: _Compiler._null,
    exp.Placeholder: _Compiler._placeholder,
    exp.Column: _Compiler._column,
    exp.Func: _Compiler._function,
}
