"""Where each node of a parsed condition was written: its span of characters in the expression.

sqlglot places only some nodes (a name, a value, a function's name: ``meta["start"]``); a node's span is
found from those below it, widened by the tokens that belong to it alone and that no node below holds:
a bracket pair, a NOT or a minus in front, the closing bracket of a call or of an IN list. A NULL is
not placed by sqlglot: the NULLs of the tree, in the order written, are the NULL tokens in order.

A span is a best reading, not a promise: whoever uses one checks that its text reads back as the node.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from starling.adql.parse import Sql

__all__ = ["source_spans"]


def _brackets(tokens: Sequence[Any]) -> dict[int, int]:
    """Each opening bracket's token index -> its closing one's."""
    closing: dict[int, int] = {}
    opened: list[int] = []
    for index, token in enumerate(tokens):
        if token.token_type.name == "L_PAREN":
            opened.append(index)
        elif token.token_type.name == "R_PAREN" and opened:
            closing[opened.pop()] = index
    return closing


def _placed(order: list[Sql], tokens: Sequence[Any]) -> dict[int, int]:
    """The token each node sqlglot placed is (by its start), and the NULL token each NULL is."""
    starts = [token.start for token in tokens]
    nulls = iter(i for i, token in enumerate(tokens) if token.token_type.name == "NULL")
    placed: dict[int, int] = {}
    for node in order:
        start = getattr(node, "meta", {}).get("start")
        if isinstance(start, int):
            placed[id(node)] = bisect.bisect_right(starts, start) - 1
        elif isinstance(node, exp.Null):
            found = next(nulls, None)
            if found is not None:
                placed[id(node)] = found
    return placed


def _signed(node: Sql) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and str(node.this).startswith("-")


class _Widening:
    def __init__(self, tokens: Sequence[Any]) -> None:
        self.tokens = tokens
        self.closing = _brackets(tokens)

    def kind(self, index: int) -> str:
        return str(self.tokens[index].token_type.name) if 0 <= index < len(self.tokens) else ""

    def widened(self, node: Sql, own: int | None, low: int, high: int) -> tuple[int, int]:
        """The token range of ``node``, from the range of what is below it and its own token."""
        if own is not None and self.kind(own + 1) == "L_PAREN" and own + 1 in self.closing:
            high = max(high, self.closing[own + 1])  # a call: its name, up to its closing bracket
        if isinstance(node, exp.Paren) and self.kind(low - 1) == "L_PAREN" and low - 1 in self.closing:
            low -= 1
            high = max(high, self.closing[low])
        elif isinstance(node, exp.Not) and self.kind(low - 1) == "NOT":
            low -= 1  # NOT in front; in x NOT IN (...) the NOT is inside the range already
        elif isinstance(node, exp.Neg) and self.kind(low - 1) == "DASH":
            low -= 1
        elif _signed(node) and self.kind(low - 1) == "DASH":
            low -= 1  # -5: one literal (parse.signed_numbers), placed by its digits
        elif isinstance(node, exp.In) and self.kind(high + 1) == "R_PAREN":
            high += 1  # the list's closing bracket follows its last value
        return low, high


def source_spans(tree: Sql, expression: str) -> dict[int, tuple[int, int]]:
    """Each node's span (by the node's identity) as ``(start, end)`` offsets into ``expression``, end
    excluded; a node with no token of its own below it (a lone NULL sqlglot moved) has none."""
    tokens = Dialect.get_or_raise(None).tokenize(expression)
    order = list(tree.dfs())  # each node before the nodes below it, left to right
    placed = _placed(order, tokens)
    widening = _Widening(tokens)
    ranges: dict[int, tuple[int, int]] = {}
    for node in reversed(order):  # the nodes below each node first
        bounds = [ranges[id(child)] for child in node.iter_expressions() if id(child) in ranges]
        own = placed.get(id(node))
        if own is not None:
            bounds.append((own, own))
        if bounds:
            low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
            ranges[id(node)] = widening.widened(node, own, low, high)
    return {key: (tokens[low].start, tokens[high].end + 1) for key, (low, high) in ranges.items()}
