"""Who may read which filter matches: each user their own filters' matches, everyone the operator's.

A user's filter is the component ``<user>.<name>`` (user names and filter names hold no dot), an
operator's filter a bare ``<name>``: the owner of a match is read from its filter's name, so a row needs
no column of its own to say it, and rows written before this rule are covered too. The broker's own
filters (the operator's) are its public streams; a user's are theirs alone.

The rule is enforced in the database, not only in the queries a service writes:
- PostgreSQL: row-level security on ``filter_matches`` for the role TAP reads as (``READER_ROLE``), the
  reader named by the transaction's ``starling.viewer`` setting (migration 0006);
- SQLite: a temporary view ``filter_matches`` over the table, and an authorizer that refuses every read
  of the table that does not go through that view (:func:`guard_sqlite`).
"""

from __future__ import annotations

import sqlite3

PUBLIC_OWNER = "operator"
OWNER_SEPARATOR = "."
READER_ROLE = "starling_reader"
VIEWER_SETTING = "starling.viewer"

# The same rule, in each database's words.
POSTGRES_VISIBLE = (
    "strpos(filter, '.') = 0 OR split_part(filter, '.', 1) = current_setting('starling.viewer', true)"
)
_SQLITE_VISIBLE = "instr(filter, '.') = 0 OR substr(filter, 1, instr(filter, '.') - 1) = starling_viewer()"


def user_filter_name(user: str, name: str) -> str:
    """The component that ``user``'s filter ``name`` is."""
    return f"{user}{OWNER_SEPARATOR}{name}"


def match_owner(filter_name: str) -> str:
    """Who owns the matches of the filter ``filter_name``."""
    owner, separator, _ = filter_name.partition(OWNER_SEPARATOR)
    return owner if separator else PUBLIC_OWNER


def may_read_match(filter_name: str, viewer: str | None) -> bool:
    """Whether ``viewer`` (None: no token) may read the matches of ``filter_name``."""
    owner = match_owner(filter_name)
    return owner == PUBLIC_OWNER or (viewer is not None and owner == viewer)


def show_matches_to(db: sqlite3.Connection, viewer: str | None) -> None:
    """Make a guarded connection (:func:`guard_sqlite`) show the matches ``viewer`` may read, from its
    next statement on: how a connection kept for many readers changes hands."""
    db.create_function("starling_viewer", 0, lambda: viewer or "", deterministic=False)


def guard_sqlite(db: sqlite3.Connection, viewer: str | None) -> None:
    """Make ``db`` (a connection to a store) show ``viewer`` only the matches it may read: the table
    ``filter_matches`` is shadowed by a temporary view of the visible rows (an unqualified name finds the
    temporary schema first), and any other read of the table, ``main.filter_matches`` by name included,
    is refused by SQLite itself. Call it once per connection, before any query of a reader's."""
    show_matches_to(db, viewer)
    db.execute(
        f"CREATE TEMP VIEW IF NOT EXISTS filter_matches AS "
        f"SELECT * FROM main.filter_matches WHERE {_SQLITE_VISIBLE}"
    )

    def authorize(
        action: int, table: str | None, _column: str | None, schema: str | None, view: str | None
    ) -> int:
        if action == sqlite3.SQLITE_READ and table == "filter_matches" and schema == "main" and view is None:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    db.set_authorizer(authorize)
