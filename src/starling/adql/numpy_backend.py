"""The numpy back end: a checked condition compiled to column operations, for the stream filters.

Every node becomes a function of the batch's columns (``AlertColumns``) that returns a whole column,
so a filter costs a few numpy operations per batch, not a Python call per alert. Sub-expressions are
shared between all the filters that run on a batch (``mag < 19`` in ten filters is computed once),
through the columns' memo. An AND/OR chain is one n-ary node: its operands are combined by a loop,
in SQL's three-valued logic, so a chain of thousands of terms costs no recursion.

Nothing is checked here: ``checks.py`` has refused every fault before, with its position.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlglot import exp

from starling.adql.budget import check_time
from starling.adql.checks import ARITHMETIC, COMPARISONS, Checked, rule_for
from starling.adql.fields import AlertColumns, FieldDef
from starling.adql.like import LikePattern
from starling.adql.numpy_functions import FUNCTIONS, Evaluate, Node, distance_compared, divide, literal
from starling.adql.parse import Sql
from starling.adql.structure import structure
from starling.adql.values import Truth, Vec, arithmetic, change_case, compare, modulo, negate, number_column
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
    exp.Add: functools.partial(arithmetic, operator.add),  # exact within int64, never wrapped around
    exp.Sub: functools.partial(arithmetic, operator.sub),
    exp.Mul: functools.partial(arithmetic, operator.mul),
    exp.Div: divide,  # ADQL's / is real division, whole numbers or not
    exp.Mod: modulo,  # SQL's MOD keeps the sign of the dividend; MOD(x, 0) is NULL
}
_LEAVES = (exp.Column, exp.Placeholder)  # read as they are: nothing to share
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
        self.keys: dict[int, str] = {}  # the memo's key of each node (its structure), by identity

    def compile(self, node: Sql) -> Node:
        rule = rule_for(_RULES, node)
        assert rule is not None, f"{type(node).__name__} passed the checks but has no rule"
        compiled = rule(self, node)
        if compiled.constant is not None or compiled.type == "null" or isinstance(node, _LEAVES):
            return compiled
        key = structure(node, self.keys)
        if self.parameters and "Placeholder(" in key:
            key = self.namespace + key
        run = compiled.run

        def shared(columns: Any) -> Any:  # one evaluation per batch for every filter that has it
            memo: dict[str, Any] | None = getattr(columns, "memo", None)
            if memo is None:
                check_time(columns)
                return run(columns)
            if key not in memo:
                check_time(columns)  # past its time budget, an evaluation stops here
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

    def _compare(self, op: Callable[[Any, Any], Any], a: Sql | Evaluate, b: Sql) -> Evaluate:
        left = self.compile(a).run if isinstance(a, exp.Expression) else a
        right = self.compile(b).run

        def run(c: Any) -> Truth:
            x, y = left(c), right(c)
            return Truth.of(compare(op, x.values, y.values), x.null | y.null)

        return run

    def _comparison(self, node: Sql) -> Node:
        op = _COMPARE[type(node)]
        within = distance_compared(self, op, node.this, node.expression)
        return within or Node("bool", self._compare(op, node.this, node.expression))

    def _between(self, node: Sql) -> Node:
        subject = self.compile(node.this).run
        low = self._compare(operator.ge, subject, node.args["low"])
        high = self._compare(operator.le, subject, node.args["high"])
        return Node("bool", lambda c: low(c).both(high(c)))

    def _in(self, node: Sql) -> Node:
        subject = self.compile(node.this).run  # once, not once per item of a long list
        first, *rest = [self._compare(operator.eq, subject, item) for item in node.expressions]

        def any_of(c: Any) -> Truth:
            result: Truth = first(c)
            for option in rest:
                result = result.either(option(c))
            return result

        return Node("bool", any_of)

    def _is(self, node: Sql) -> Node:
        inner = self.compile(node.this).run
        return Node("bool", lambda c: (lambda v: Truth(v.null))(inner(c)))

    def _like(self, node: Sql) -> Node:
        like, escape = (
            (node.this, self.checked.constant(node.expression))
            if isinstance(node, exp.Escape)
            else (node, None)
        )
        fold = isinstance(like, exp.ILike)  # x ILIKE p is LOWER(x) LIKE LOWER(p)
        pattern = LikePattern(self.checked.constant(like.expression), escape, fold)
        negated = bool(like.args.get("negate"))  # sqlglot reads x NOT LIKE p as LIKE, negated
        if self.checked.type(like.this) == "null":  # NULL LIKE p is unknown (a NULL constant is no text)
            return Node("bool", lambda c: _UNKNOWN)
        subject = self.compile(like.this).run

        def run(c: Any) -> Truth:
            v = subject(c)
            values = change_case(v.values, upper=False) if fold else v.values
            truth = Truth.of(pattern.match_array(values, lambda: check_time(c)), v.null)
            return truth.negate() if negated else truth

        return Node("bool", run)

    # -- values --------------------------------------------------------------------------------------

    def _arithmetic(self, node: Sql) -> Node:
        left, right = self.compile(node.this).run, self.compile(node.expression).run
        apply = _ARITHMETIC[type(node)]

        def run(c: Any) -> Vec:
            x, y = left(c), right(c)
            if apply is modulo:
                values, null = modulo(x.values, y.values)
                return number_column(values, x.null | y.null | null)
            return number_column(apply(x.values, y.values), x.null | y.null)

        return Node("number", run)

    def _neg(self, node: Sql) -> Node:
        constant = self.checked.constant(node)
        if constant is not None:
            return literal(constant)
        inner = self.compile(node.this).run
        return Node("number", lambda c: (lambda v: Vec(negate(v.values), v.null, "number"))(inner(c)))

    def _concatenation(self, node: Sql) -> Node:
        if "null" in (self.checked.type(node.this), self.checked.type(node.expression)):
            # x || NULL is NULL (a NULL constant is a column of numbers: numpy cannot add it to text)
            return Node("string", lambda c: Vec.constant(None, "string"))
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
    exp.Escape: _Compiler._like,
    **{cls: _Compiler._arithmetic for cls in ARITHMETIC},
    exp.Neg: _Compiler._neg,
    exp.DPipe: _Compiler._concatenation,
    exp.Literal: _Compiler._literal,
    exp.Null: _Compiler._null,
    exp.Placeholder: _Compiler._placeholder,
    exp.Column: _Compiler._column,
    exp.Func: _Compiler._function,
}
