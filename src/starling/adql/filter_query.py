"""A stream filter as the TAP query that selects the stored alerts it matches.

TAP serves every stored alert as a filter sees it: ``starling.alert_fields`` (made by
``starling.vo.alert_fields``) has one row per alert and one column per field of the filter language.
A built-in or history field is the column of its name (``mag``, ``ndethist``); an annotator's declared
output is the column ``<annotator>.<key>``, named by the annotator's own name whichever alias a filter
used (``history_summary.peak_mag`` and ``"history-summary".peak_mag`` are ``"history-summary.peak_mag"``),
written in ADQL as a delimited identifier.

A filter becomes a query in three steps: the filter's own front end reads and checks it (the same
errors, at the same line and column, as a live filter), each field is rewritten as its column, and the
condition is written out as ADQL: the standard's names where sqlglot's differ (``CEILING``,
``TRUNCATE``, ``MOD``, ``LOG10``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlglot import exp, generator
from sqlglot.dialects.dialect import Dialect

from starling.adql.checks import Checked, check_condition
from starling.adql.fields import FieldCatalogue, FieldDef, catalogue
from starling.adql.parse import Sql, fault, parse_condition

__all__ = [
    "VIEW",
    "WILDCARD_NAMES",
    "ViewCondition",
    "adql_identifier",
    "adql_text",
    "column_name",
    "filter_as_query",
    "view_columns",
    "view_condition",
    "view_fields",
]

VIEW = "starling.alert_fields"

# What each ``*`` of a declared output stands for among the view's columns (one column per name): the
# bands of lc-features' per-band features; for the other annotators, the catalogue, list and map the
# README and the example pipelines name. The view's columns are fixed (TAP_SCHEMA describes them), so
# it cannot have one for every name a deployment may choose: a filter on another name is refused as a
# query, at the field's position, and ``starling.annotations`` still holds the value.
WILDCARD_NAMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "lc-features": tuple((band,) for band in ("u", "g", "r", "i", "z", "y")),
    "xmatch": (("gaia",), ("gaia", "phot_g_mean_mag")),
    "watchlists": (("favourites",),),
    "watchmaps": (("gw",),),
}

_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def column_name(field: FieldDef) -> str:
    """The view's column for a field (the field as the catalogue resolved it, any alias)."""
    if field.source in ("alert", "history"):
        return field.name
    return ".".join((field.source, *field.path)).lower()


def adql_identifier(name: str) -> str:
    """A column name as ADQL writes it: as it is when it is a regular identifier, else delimited."""
    return name if _REGULAR.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def view_fields(fields: FieldCatalogue | None = None) -> list[FieldDef]:
    """Every field the view has a column for, once each and named as its column: the built-in and
    history fields, then each annotator's declared outputs (a ``*`` as each of its WILDCARD_NAMES),
    annotator by annotator."""
    fields = fields or catalogue()
    found: dict[str, FieldDef] = {}
    for field in fields.fields.values():
        found.setdefault(column_name(field), field)
    for pattern, template in fields.patterns.items():
        stars = pattern.count("*")
        for names in WILDCARD_NAMES.get(template.source, ()):
            if len(names) != stars:
                continue
            filled = iter(names)
            path = tuple(next(filled) if part == "*" else part for part in template.path)
            resolved = fields.resolve(".".join((template.source, *path)))
            if resolved is not None and resolved.source == template.source:
                found.setdefault(column_name(resolved), resolved)
    named = [replace(field, name=name) for name, field in found.items()]
    builtin = [f for f in named if f.source in ("alert", "history")]
    annotations = sorted((f for f in named if f not in builtin), key=lambda f: f.source)  # stable
    return builtin + annotations


@functools.cache
def _default_columns() -> frozenset[str]:
    return frozenset(f.name for f in view_fields())


def _log(self: generator.Generator, node: Sql) -> str:
    base, value = node.this, node.expression
    if value is None:
        return self.func("LOG", base)
    if isinstance(base, exp.Literal) and not base.is_string and base.this == "10":
        return self.func("LOG10", value)
    return self.func("LOG", base, value)


class _Adql(Dialect):
    """sqlglot's default SQL, with ADQL's names for the functions sqlglot spells otherwise."""

    class Generator(generator.Generator):
        TRANSFORMS = {
            **generator.Generator.TRANSFORMS,
            exp.Ceil: lambda self, e: self.func("CEILING", e.this),
            exp.Trunc: lambda self, e: self.func("TRUNCATE", e.this, e.args.get("decimals")),
            exp.Mod: lambda self, e: self.func("MOD", e.this, e.expression),
            exp.Log: _log,
        }


@dataclass(frozen=True)
class ViewCondition:
    """A filter's condition over the view: its ADQL, and the view's columns it reads."""

    adql: str
    columns: tuple[str, ...]


def view_condition(expression: str, fields: FieldCatalogue | None = None) -> ViewCondition:
    """The filter's condition with each field as the view's column. Raises FilterSyntaxError as
    ``compile_filter`` does, and at the field's position for a field the view has no column for."""
    tree = parse_condition(expression)
    checked = check_condition(tree, expression, fields or catalogue())
    used = dict.fromkeys(name for _, name in view_columns(checked, fields))
    return ViewCondition(adql_text(tree), tuple(used))


def view_columns(checked: Checked, fields: FieldCatalogue | None = None) -> list[tuple[Sql, str]]:
    """Replaces each field of a checked condition, in its tree, by the view's column for it. Returns
    each field's node as it was (out of the tree now, still the key of what the checks found) with its
    column. Raises FilterSyntaxError at a field the view has no column for."""
    known = _default_columns() if fields is None else frozenset(f.name for f in view_fields(fields))
    replaced: list[tuple[Sql, str]] = []
    for node in list(checked.tree.find_all(exp.Column)):
        field = checked.field_of(node)
        name = column_name(field)
        if name not in known:
            raise fault(
                checked.expression,
                node,
                f"{name!r} is a field of the filter language but no column of {VIEW}, which has the "
                f"{field.source} fields of {_wildcard_names(field)} only",
            )
        node.replace(exp.column(exp.to_identifier(name, quoted=not _REGULAR.fullmatch(name))))
        replaced.append((node, name))
    return replaced


def adql_text(node: Sql) -> str:
    """A node of a condition (or the whole of one) written as ADQL."""
    return str(node.sql(dialect=_Adql))


def _wildcard_names(field: FieldDef) -> str:
    names: Iterable[tuple[str, ...]] = WILDCARD_NAMES.get(field.source, ())
    return ", ".join(".".join(n) for n in names) or "none"


def filter_as_query(expression: str, columns: str = "survey, alert_id") -> str:
    """The TAP query (ADQL) that selects ``columns`` of the stored alerts ``expression`` matches."""
    return f"SELECT {columns} FROM {VIEW} WHERE {view_condition(expression).adql}"
