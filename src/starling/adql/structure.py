"""A tree's structure as a canonical text: equal texts are equal trees.

The plan groups filters by the text of their templates, and the back end shares a sub-expression
between filters by its text. sqlglot's ``sql()`` would do, but it copies the tree and sets up a
generator on every call (some 75 microseconds: 3 s for the 12,000 comparisons of one long filter).
This is built once, bottom-up, without recursion; an AND/OR chain is one node with its operands
(a chain of thousands of terms is not a tree thousands deep).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from starling.adql.checks import CONNECTIVES, chain_operands
from starling.adql.parse import Sql


def _children(node: Sql) -> list[Sql]:
    if isinstance(node, CONNECTIVES):
        return chain_operands(node)
    found = []
    for value in node.args.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expression):
                found.append(item)
    return found


def _text(node: Sql, known: dict[int, str]) -> str:
    if isinstance(node, CONNECTIVES):
        return f"{type(node).__name__}[{','.join(known[id(o)] for o in chain_operands(node))}]"
    parts = []
    for name in sorted(node.args):
        value: Any = node.args[name]
        if value is None or value is False or (isinstance(value, list) and not value):
            continue
        if isinstance(value, list):
            text = (
                "["
                + ",".join(known[id(v)] if isinstance(v, exp.Expression) else repr(v) for v in value)
                + "]"
            )
        elif isinstance(value, exp.Expression):
            text = known[id(value)]
        else:
            text = repr(value)
        parts.append(f"{name}={text}")
    return f"{type(node).__name__}({';'.join(parts)})"


def structure(tree: Sql, known: dict[int, str] | None = None) -> str:
    """The tree's canonical text; ``known`` keeps the text of every node met (by identity), so the
    texts of all the nodes of a tree cost one walk."""
    known = {} if known is None else known
    pending: list[tuple[Sql, bool]] = [(tree, False)]
    while pending:
        node, ready = pending.pop()
        if id(node) in known:
            continue
        if ready:
            known[id(node)] = _text(node, known)
            continue
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in known)
    return known[id(tree)]
