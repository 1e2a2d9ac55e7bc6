"""Who may read which filter matches and annotations: each user their own, everyone the operator's.

A user's filter is the component ``<user>.<name>`` (user names and filter names hold no dot), an
operator's filter a bare ``<name>``: the owner of a match is read from its filter's name, so a row needs
no column of its own to say it, and rows written before this rule are covered too. The broker's own
filters (the operator's) are its public streams; a user's are theirs alone.

Annotations follow the same rule by their annotator's name: an annotation's entries that name an owner
(a user's watchlist or watchmap hit: ``{"<list>": {..., "owner": "ada"}}``) are kept in a row of that
owner's, annotator ``<owner>.<annotator>`` (:func:`annotation_rows`), the rest in the annotator's own row.

The rule is enforced in the database, not only in the queries a service writes:
- PostgreSQL: row-level security on ``filter_matches`` and ``annotations`` for the role TAP reads as
  (``READER_ROLE``), the reader named by the transaction's ``starling.viewer`` setting (migrations 0006
  and 0008);
- SQLite: a temporary view of each table's visible rows, and an authorizer that refuses every read of
  the tables that does not go through a view (:func:`guard_sqlite`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from starling.alert.export import OWNER_SEPARATOR, PUBLIC_OWNER, entry_owner, filter_owner

READER_ROLE = "starling_reader"
VIEWER_SETTING = "starling.viewer"

# The tables guarded, each with the column that names the owner.
OWNED_BY = {"filter_matches": "filter", "annotations": "annotator"}


# The same rule, in each database's words.
def postgres_visible(column: str) -> str:
    viewer = f"current_setting('{VIEWER_SETTING}', true)"
    return f"strpos({column}, '.') = 0 OR split_part({column}, '.', 1) = {viewer}"


def _sqlite_visible(column: str) -> str:
    return f"instr({column}, '.') = 0 OR substr({column}, 1, instr({column}, '.') - 1) = starling_viewer()"


POSTGRES_VISIBLE = postgres_visible("filter")


def annotation_rows(annotator: str, payload: Any) -> list[tuple[str, Any]]:
    """An annotation as the store keeps it: its entries that name an owner other than the operator in a
    row of each owner's (``<owner>.<annotator>``), the others in the annotator's own row."""
    if not isinstance(payload, dict):
        return [(annotator, payload)]
    by_owner: dict[str, dict[str, Any]] = {}
    for key, value in payload.items():
        by_owner.setdefault(entry_owner(value), {})[key] = value
    public = by_owner.pop(PUBLIC_OWNER, {})
    rows: list[tuple[str, Any]] = [(annotator, public)] if public or not by_owner else []
    return rows + [(user_filter_name(owner, annotator), part) for owner, part in sorted(by_owner.items())]


def user_filter_name(user: str, name: str) -> str:
    """The component that ``user``'s filter ``name`` is."""
    return f"{user}{OWNER_SEPARATOR}{name}"


def match_owner(filter_name: str) -> str:
    """Who owns the matches of the filter ``filter_name``."""
    return filter_owner(filter_name)


def may_read_match(filter_name: str, viewer: str | None) -> bool:
    """Whether ``viewer`` (None: no token) may read the matches of ``filter_name``."""
    owner = match_owner(filter_name)
    return owner == PUBLIC_OWNER or (viewer is not None and owner == viewer)


def show_matches_to(db: sqlite3.Connection, viewer: str | None) -> None:
    """Make a guarded connection (:func:`guard_sqlite`) show the matches ``viewer`` may read, from its
    next statement on: how a connection kept for many readers changes hands."""
    db.create_function("starling_viewer", 0, lambda: viewer or "", deterministic=False)


def guard_sqlite(db: sqlite3.Connection, viewer: str | None) -> None:
    """Make ``db`` (a connection to a store) show ``viewer`` only the matches and annotations it may
    read: each guarded table is shadowed by a temporary view of its visible rows (an unqualified name
    finds the temporary schema first), and any other read of the table, ``main.<table>`` by name
    included, is refused by SQLite itself (a view built on it, ``alert_fields``, reads its public rows).
    Call it once per connection, before any query of a reader's."""
    show_matches_to(db, viewer)
    for table, column in OWNED_BY.items():
        db.execute(
            f"CREATE TEMP VIEW IF NOT EXISTS {table} AS "
            f"SELECT * FROM main.{table} WHERE {_sqlite_visible(column)}"
        )

    def authorize(
        action: int, table: str | None, _column: str | None, schema: str | None, view: str | None
    ) -> int:
        if action == sqlite3.SQLITE_READ and table in OWNED_BY and schema == "main" and view is None:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    db.set_authorizer(authorize)
