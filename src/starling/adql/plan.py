"""All the live filters of a stage judged together: filters of one shape become one evaluation.

Users' filters share a few shapes (``mag < X AND reliability > Y``, a cone, a history cut) with
their own numbers. The plan replaces each filter's numbers (and strings compared with fields) by
placeholders; filters whose templates are the same form a group, compiled once with its parameters
as (k, 1) columns. One evaluation then judges the k filters over the batch as a (k, n) array, so a
hundred filters cost a handful of numpy operations per shape, not a hundred evaluations.

Literals that shape the computation stay in the template (ROUND's digits, POLYGON vertices, LIKE
patterns, coordinate systems, RAND's seed), and so do the minus signs before them.

One filter never costs the others (``judge``): a group that cannot be compiled together is compiled
filter by filter; a group whose evaluation raises is judged again filter by filter, so only the
filter at fault fails; each evaluation has a time budget (``budget.py``) and is stopped past it. A
failure is the filter's alone, reported in the ``Judgement`` with its reason.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from starling.adql.budget import SHARE_SPENT, OverBudgetError, OwnerShares, cpu_clock, time_budget
from starling.adql.checks import check_depth
from starling.adql.fields import FieldCatalogue
from starling.adql.language import Columns, CompiledFilter, compile_filter, compile_tree
from starling.adql.parse import number_literal, parse_condition
from starling.adql.structure import structure
from starling.adql.values import Vec
from starling.core.collector import collector_paused
from starling.errors import PROCESS_EXITS

# Literals under these nodes are parameters; anything else stays in the template.
_PARAMETER_PARENTS = (
    exp.EQ,
    exp.NEQ,
    exp.LT,
    exp.LTE,
    exp.GT,
    exp.GTE,
    exp.Between,
    exp.In,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
)
_GEOMETRY = ("POINT", "CIRCLE", "DISTANCE")
_EXACT_IN_A_DOUBLE = 2**53  # whole numbers beyond are parameters of their own kind (i), never reals
BoolArray = npt.NDArray[np.bool_]
_GROUPS_REMEMBERED = 512
_COMPILED: OrderedDict[tuple[int, str, tuple[Any, ...]], tuple[FieldCatalogue, CompiledFilter]] = (
    OrderedDict()
)


def _is_parameter(literal: exp.Literal) -> bool:
    parent = literal.parent
    while isinstance(parent, exp.Neg):  # -5 is a parameter where 5 would be, and only there
        parent = parent.parent
    if isinstance(parent, _PARAMETER_PARENTS):
        return True
    if isinstance(parent, exp.Anonymous) and parent.name.upper() in _GEOMETRY:
        return not literal.is_string  # a number; the coordinate system stays
    return False


def _parameter(literal: exp.Literal, index: int) -> tuple[str, Any]:
    if literal.is_string:
        return f"s{index}", literal.this
    value = number_literal(literal.this)
    exact = isinstance(value, int) and abs(value) > _EXACT_IN_A_DOUBLE
    return f"{'i' if exact else 'n'}{index}", value


def parameterize(tree: Any) -> tuple[Any, list[Any]]:
    """A copy of the tree with its parameter literals replaced by ``:n0``, ``:s1`` ... and their values.

    ``n`` numbers, ``i`` whole numbers beyond 2**53 (kept exact: never in a column of reals), ``s``
    strings. A long IN list is replaced in one step (one at a time costs the square of its length).
    """
    template = tree.copy()
    values: list[Any] = []
    lists: dict[int, tuple[Any, str, dict[int, Any]]] = {}
    for literal in list(template.find_all(exp.Literal)):
        if not _is_parameter(literal):
            continue
        name, value = _parameter(literal, len(values))
        values.append(value)
        placeholder = exp.Placeholder(this=name)
        parent, key = literal.parent, literal.arg_key
        if isinstance(parent.args.get(key), list):
            lists.setdefault(id(parent), (parent, key, {}))[2][id(literal)] = placeholder
        else:
            literal.replace(placeholder)
    for parent, key, replaced in lists.values():
        parent.set(key, [replaced.get(id(item), item) for item in parent.args[key]])
    return template, values


@functools.lru_cache(maxsize=1024)
def _parameterized(expression: str) -> tuple[Any, tuple[Any, ...], str]:
    """An expression's template (shared: never changed), its values, and the template's structure."""
    tree = parse_condition(expression)
    check_depth(tree, expression)
    template, values = parameterize(tree)
    return template, tuple(values), structure(template)


@dataclass(frozen=True)
class Failure:
    """Why a filter has no verdicts for a batch; ``overrun``: it went past its time budget."""

    reason: str
    overrun: bool = False


@dataclass
class Judgement:
    """A batch judged: each filter's verdicts, or its failure; and the seconds its evaluation took."""

    verdicts: dict[str, BoolArray] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # The verdicts as they were judged, a (k, n) array per group of filters (counted in one call each).
    groups: list[tuple[list[str], BoolArray]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many alerts each filter with verdicts matched."""
        found: dict[str, int] = {}
        for names, rows in self.groups:
            found.update(zip(names, np.count_nonzero(rows, axis=1).tolist(), strict=True))
        return found


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def run_filter(compiled: CompiledFilter, columns: Columns, budget_s: float | None) -> tuple[Any, float]:
    """One evaluation: (the truth, or a Failure; seconds). Nothing it raises goes further."""
    # The process's garbage collections are not the filter's work: none runs while it is timed.
    with collector_paused():
        start = cpu_clock()  # CPU seconds, as budgets are counted
        try:
            with time_budget(columns, budget_s), np.errstate(all="ignore"):
                truth = compiled.root(columns)
        except OverBudgetError:
            return Failure(f"over its time budget of {budget_s:g} s for a batch: stopped", True), (
                cpu_clock() - start
            )
        except BaseException as exc:  # a bug, a value it cannot take, a Rust panic: this filter's alone
            if isinstance(exc, PROCESS_EXITS):
                raise
            return Failure(_reason(exc)), cpu_clock() - start
        seconds = cpu_clock() - start
    if budget_s is not None and seconds > budget_s:  # one operation too long to be stopped in
        return Failure(f"over its time budget of {budget_s:g} s for a batch ({seconds:.2f} s)", True), seconds
    return truth, seconds


@dataclass
class _Group:
    template: Any  # None: a filter compiled alone
    names: list[str] = field(default_factory=list)
    values: list[tuple[Any, ...]] = field(default_factory=list)
    compiled: CompiledFilter | None = None
    key: str = ""
    expression: str = ""  # the first's: the template keeps its positions

    def compile(self, fields: FieldCatalogue) -> CompiledFilter:
        """Compiled, or taken from the groups compiled for earlier plans (a plan is made again at
        every change of the live filters: only the groups that changed are compiled again)."""
        cache_key = (id(fields), self.key, tuple(self.values))
        hit = _COMPILED.get(cache_key)
        if hit is not None and hit[0] is fields:
            _COMPILED.move_to_end(cache_key)
            return hit[1]
        compiled = self._compile(fields)
        _COMPILED[cache_key] = (fields, compiled)  # keeps the catalogue, so its id is not reused
        while len(_COMPILED) > _GROUPS_REMEMBERED:
            _COMPILED.popitem(last=False)
        return compiled

    def _compile(self, fields: FieldCatalogue) -> CompiledFilter:
        parameters: dict[str, Vec] = {}
        placeholders = [p.name for p in self.template.find_all(exp.Placeholder)]
        for index, name in enumerate(placeholders):
            column = [row[index] for row in self.values]
            if name.startswith("s"):
                strings = np.array(column, dtype=str).reshape(-1, 1)
                parameters[name] = Vec(strings, np.bool_(False), "string")
            else:
                whole = all(isinstance(v, int) for v in column)
                array = np.array(column, dtype=np.int64 if whole else float).reshape(-1, 1)
                parameters[name] = Vec(array, np.bool_(False), "number")
        return compile_tree(self.template, self.expression, fields, parameters)


class FilterPlan:
    """Groups filters by shape; ``judge`` returns each filter's verdicts over the batch, or its failure."""

    def __init__(self, filters: Sequence[tuple[str, str]], fields: FieldCatalogue) -> None:
        self.expressions = dict(filters)
        self.fields_catalogue = fields
        self.broken: dict[str, Failure] = {}  # filters that cannot be compiled (now)
        self._alone: dict[str, CompiledFilter] = {}
        groups: dict[str, _Group] = {}
        for name, expression in filters:
            try:
                template, values, key = _parameterized(expression)
            except Exception as exc:  # refused when it was submitted; the catalogue may have changed
                self.broken[name] = Failure(f"cannot be compiled: {_reason(exc)}")
                continue
            group = groups.setdefault(key, _Group(template, key=key, expression=expression))
            group.names.append(name)
            group.values.append(values)
        self.groups: list[_Group] = []
        for group in groups.values():
            try:
                group.compiled = group.compile(fields)
                self.groups.append(group)
            except Exception:  # together they do not compile (one's number): each alone
                self.groups.extend(self._singles(group.names))
        used = sorted({name for g in self.groups if g.compiled for name in g.compiled.fields})
        self.fields = [f for name in used if (f := fields.resolve(name)) is not None]

    def _single(self, name: str) -> CompiledFilter | None:
        if name not in self._alone and name not in self.broken:
            try:
                self._alone[name] = compile_filter(self.expressions[name], self.fields_catalogue)
            except Exception as exc:
                self.broken[name] = Failure(f"cannot be compiled: {_reason(exc)}")
        return self._alone.get(name)

    def _singles(self, names: Sequence[str]) -> list[_Group]:
        return [_Group(None, [n], compiled=c) for n in names if (c := self._single(n)) is not None]

    def judge(
        self, columns: Columns, budgets: Mapping[str, float] | None = None, shares: OwnerShares | None = None
    ) -> Judgement:
        """Every filter's verdicts (or failure) over the batch; ``budgets``: seconds per filter;
        ``shares``: seconds per owner, for all of its filters together."""
        judgement = Judgement(failures=dict(self.broken))
        prefetch = getattr(columns, "prefetch", None)
        if prefetch is not None:
            # If it fails, fields are read one by one, and a failure is the filters' that read it.
            with contextlib.suppress(Exception):
                prefetch(self.fields)
        for group in self.groups:
            self._judge_group(group, columns, budgets or {}, judgement, shares)
        for name, failure in self.broken.items():  # some found only now, judged alone
            judgement.failures.setdefault(name, failure)
        return judgement

    def _judge_group(
        self,
        group: _Group,
        columns: Columns,
        budgets: Mapping[str, float],
        judgement: Judgement,
        shares: OwnerShares | None = None,
    ) -> None:
        assert group.compiled is not None
        budget = max((budgets[n] for n in group.names if n in budgets), default=None)
        if shares is not None:
            spent = shares.spent(group.names)
            if spent:  # judged without them; the others of the group, each alone
                judgement.failures.update(dict.fromkeys(spent, Failure(SHARE_SPENT, True)))
                for single in self._singles([n for n in group.names if n not in spent]):
                    self._judge_group(single, columns, budgets, judgement, shares)
                return
            left = shares.left(group.names)
            if left is not None:
                budget = left if budget is None else min(budget, left)
        outcome, seconds = run_filter(group.compiled, columns, budget)
        if shares is not None:
            shares.spend(group.names, seconds)
        if isinstance(outcome, Failure) and not outcome.overrun and len(group.names) > 1:
            for single in self._singles(group.names):  # which of them is at fault: each alone
                self._judge_group(single, columns, budgets, judgement, shares)
            return
        if isinstance(outcome, Failure):
            judgement.failures.update(dict.fromkeys(group.names, outcome))
        else:
            rows = np.broadcast_to(outcome.true, (len(group.names), len(columns)))
            judgement.verdicts.update(zip(group.names, rows, strict=True))
            judgement.groups.append((group.names, rows))
        judgement.seconds.update(dict.fromkeys(group.names, seconds))

    def evaluate(self, columns: Columns) -> dict[str, BoolArray]:
        """The verdicts of the filters that did not fail (see ``judge``)."""
        return self.judge(columns).verdicts
