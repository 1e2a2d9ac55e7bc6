"""All the live filters of a stage judged together: filters of one shape become one evaluation.

Users' filters share a few shapes (``mag < X AND reliability > Y``, a cone, a history cut) with
their own numbers. The plan replaces each filter's numbers (and strings compared with fields) by
placeholders; filters whose templates are the same form a group, compiled once with its parameters
as (k, 1) columns. One evaluation then judges the k filters over the batch as a (k, n) array, so a
hundred filters cost a handful of numpy operations per shape, not a hundred evaluations.

Literals that shape the computation stay in the template (ROUND's digits, POLYGON vertices, LIKE
patterns, coordinate systems, RAND's seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from starling.adql.fields import FieldCatalogue
from starling.adql.language import Columns, CompiledFilter, compile_tree
from starling.adql.parse import parse_condition
from starling.adql.values import Vec

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
    exp.Neg,
)
_GEOMETRY = ("POINT", "CIRCLE", "DISTANCE")


def _is_parameter(literal: exp.Literal) -> bool:
    parent = literal.parent
    if isinstance(parent, _PARAMETER_PARENTS):
        return True
    if isinstance(parent, exp.Anonymous) and parent.name.upper() in _GEOMETRY:
        return not literal.is_string  # a number; the coordinate system stays
    return False


def parameterize(tree: Any) -> tuple[Any, list[Any]]:
    """A copy of the tree with its parameter literals replaced by ``:p0``, ``:p1`` ... and their values."""
    template = tree.copy()
    values: list[Any] = []
    for literal in list(template.find_all(exp.Literal)):
        if not _is_parameter(literal):
            continue
        if literal.is_string:
            value: Any = literal.this
            name = f"s{len(values)}"
        else:
            text = literal.this
            try:
                value = int(text)
            except ValueError:
                value = float(text)
            name = f"n{len(values)}"
        values.append(value)
        literal.replace(exp.Placeholder(this=name))
    return template, values


@dataclass
class _Group:
    template: Any
    names: list[str] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)
    compiled: CompiledFilter | None = None

    def compile(self, fields: FieldCatalogue) -> None:
        parameters: dict[str, Vec] = {}
        placeholders = [p.name for p in self.template.find_all(exp.Placeholder)]
        for index, name in enumerate(placeholders):
            column = [row[index] for row in self.values]
            if name.startswith("s"):
                strings = np.array(column, dtype=str).reshape(-1, 1)
                parameters[name] = Vec(strings, np.bool_(False), "string")
            else:
                exact = all(isinstance(v, int) for v in column)
                array = np.array(column, dtype=np.int64 if exact else float).reshape(-1, 1)
                parameters[name] = Vec(array, np.bool_(False), "number")
        self.compiled = compile_tree(self.template, self.template.sql(), fields, parameters)


class FilterPlan:
    """Groups filters by shape; ``evaluate`` returns each filter's verdicts over the batch."""

    def __init__(self, filters: Sequence[tuple[str, str]], fields: FieldCatalogue) -> None:
        groups: dict[str, _Group] = {}
        for name, expression in filters:
            template, values = parameterize(parse_condition(expression))
            key = template.sql()
            group = groups.setdefault(key, _Group(template))
            group.names.append(name)
            group.values.append(values)
        for group in groups.values():
            group.compile(fields)
        self.groups = list(groups.values())
        used = sorted({name for g in self.groups if g.compiled for name in g.compiled.fields})
        self.fields = [f for name in used if (f := fields.resolve(name)) is not None]

    def evaluate(self, columns: Columns) -> dict[str, npt.NDArray[np.bool_]]:
        verdicts: dict[str, npt.NDArray[np.bool_]] = {}
        n = len(columns)
        prefetch = getattr(columns, "prefetch", None)
        if prefetch is not None:
            prefetch(self.fields)
        for group in self.groups:
            assert group.compiled is not None
            with np.errstate(all="ignore"):
                truth = group.compiled.root(columns)
            rows = np.broadcast_to(truth.true, (len(group.names), n))
            for name, row in zip(group.names, rows, strict=True):
                verdicts[name] = row
        return verdicts
