"""Why a filter did or did not pass an alert: its condition cut into parts, each an ADQL expression over
``starling.alert_fields`` that gives the part's value on one row.

The parts are every condition in the filter (AND, OR, NOT, a comparison, BETWEEN, IN, LIKE, IS NULL) and
every value under them that reads a field (the field, arithmetic on it, a function of it). Constants
(``19.5``, ``PI() * 2``) and geometry (``POINT(ra, dec)``, which no column can hold) are no parts: the
fields under them are parts of the nearest part above. A chain of one connective (``a AND b AND c``) is
one part, as the filter judges it; so is ``x NOT IN (...)`` (and ``NOT BETWEEN``, ``IS NOT NULL``), one
condition as written, where a NOT in front (``NOT x IN (...)``) is a part above ``x IN (...)``.

A condition's value is ``CASE WHEN c THEN 1 WHEN NOT (c) THEN 0 END``: NULL when it is unknown, SQL's
three-valued logic, as the stream filter has it. Each part keeps its text as the user wrote it (the
slice of the expression between its first and last tokens, ``spans``); a slice that would not read back
as that part is replaced by the part written out again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from starling.adql.checks import Checked, check_condition
from starling.adql.fields import FieldCatalogue, catalogue
from starling.adql.filter_query import VIEW, adql_identifier, adql_text, view_columns
from starling.adql.parse import FilterSyntaxError, Sql, fault, parse_condition
from starling.adql.spans import source_spans

__all__ = ["MAX_PARTS", "MAX_QUERY_CHARS", "Explanation", "Kind", "Part", "explain"]

# One answer is one row of one query with a column per part: a filter of a few hundred parts is already
# more than a person reads, and each part repeats the text of the parts under it in the query.
MAX_PARTS = 200
MAX_QUERY_CHARS = 400_000

Kind = Literal["condition", "value"]


@dataclass(frozen=True)
class Part:
    """A part of a condition: its text as written, ``condition`` or ``value``, and its ADQL over the view
    (a condition's: 1, 0, or NULL when unknown)."""

    text: str
    kind: Kind
    adql: str
    children: tuple[Part, ...] = ()

    def walk(self) -> Iterator[Part]:
        """This part and every part under it, each before its children (the query's order)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Explanation:
    """A checked filter cut into its parts; ``fields``: the view's columns it reads, in the order
    written."""

    expression: str
    root: Part
    fields: tuple[str, ...]

    def parts(self) -> list[Part]:
        return list(self.root.walk())

    def query(self, where: str) -> str:
        """The TAP query of every part's value (``p0``, ``p1``, ... in the order of ``parts``) and every
        field's (``f0``, ...) on the rows of the view that ``where`` selects."""
        columns = [f"{part.adql} AS p{i}" for i, part in enumerate(self.parts())]
        columns += [f"{adql_identifier(name)} AS f{i}" for i, name in enumerate(self.fields)]
        return f"SELECT {', '.join(columns)} FROM {VIEW} WHERE {where}"


@dataclass
class _Draft:
    """A part before the columns are rewritten: the node it is, as the checks know it."""

    node: Sql
    text: str
    kind: Kind
    children: list[_Draft]


class _Cutter:
    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.spans = source_spans(checked.tree, checked.expression)
        self.count = 0

    def parts(self, node: Sql) -> list[_Draft]:
        """The parts ``node`` is: itself, or (a constant, geometry, a bracket) the parts under it."""
        while isinstance(node, exp.Paren):
            node = node.this
        kind = self.checked.types.get(id(node))
        if kind == "bool":
            return [self.draft(node, "condition", self.under(self.operands(node)))]
        if isinstance(node, exp.Column):
            return [self.draft(node, "value", [])]
        children = self.under(list(node.iter_expressions()))
        if kind in ("number", "string") and node.find(exp.Column) is not None:
            return [self.draft(node, "value", children)]
        return children  # untyped (ESCAPE's LIKE, a frame), constant, or geometry: see through it

    def operands(self, node: Sql) -> list[Sql]:
        if isinstance(node, (exp.And, exp.Or)):
            return self.checked.operands(node)
        if isinstance(node, exp.Not) and self.spans.get(id(node)) == self.spans.get(id(node.this)):
            return list(node.this.iter_expressions())  # x NOT IN (...): one condition, as written
        return list(node.iter_expressions())

    def under(self, nodes: list[Sql]) -> list[_Draft]:
        return [part for node in nodes for part in self.parts(node)]

    def draft(self, node: Sql, kind: Kind, children: list[_Draft]) -> _Draft:
        self.count += 1
        if self.count > MAX_PARTS:
            raise fault(
                self.checked.expression,
                node,
                f"the filter has more than {MAX_PARTS} parts (conditions, and values that read a field) "
                "to explain; explain a part of it at a time",
            )
        return _Draft(node, self.text(node), kind, children)

    def text(self, node: Sql) -> str:
        """The node as written, when that slice reads back as the node; else written out again."""
        span = self.spans.get(id(node))
        if span is not None:
            written = self.checked.expression[span[0] : span[1]]
            try:
                if parse_condition(written) == node:
                    return written
            except FilterSyntaxError:
                pass
        return adql_text(node)


def _finished(draft: _Draft, columns: dict[int, str]) -> Part:
    """The draft as a part over the view, once its tree's fields are the view's columns."""
    column = columns.get(id(draft.node))
    adql = adql_identifier(column) if column is not None else adql_text(draft.node)
    if draft.kind == "condition":
        adql = f"CASE WHEN {adql} THEN 1 WHEN NOT ({adql}) THEN 0 END"
    children = tuple(_finished(child, columns) for child in draft.children)
    return Part(draft.text, draft.kind, adql, children)


def explain(expression: str, fields: FieldCatalogue | None = None) -> Explanation:
    """``expression`` cut into its parts. Raises FilterSyntaxError as ``compile_filter`` does (the same
    message at the same line and column), at a field the view has no column for, and for a filter of
    more than MAX_PARTS parts or whose query would be longer than MAX_QUERY_CHARS."""
    tree = parse_condition(expression)
    checked = check_condition(tree, expression, fields or catalogue())
    cutter = _Cutter(checked)
    (draft,) = cutter.parts(tree)  # the whole is a condition (the checks said so): one part
    replaced = view_columns(checked, fields)
    columns = {id(node): name for node, name in replaced}  # the nodes are held alive by ``replaced``
    written = sorted(replaced, key=lambda pair: cutter.spans.get(id(pair[0]), (0, 0)))
    explanation = Explanation(
        expression, _finished(draft, columns), tuple(dict.fromkeys(name for _, name in written))
    )
    if len(explanation.query("")) > MAX_QUERY_CHARS:
        raise FilterSyntaxError(
            f"the filter is too long to explain: its parts would make a query of more than "
            f"{MAX_QUERY_CHARS:,} characters; explain a part of it at a time",
            expression,
        )
    return explanation
