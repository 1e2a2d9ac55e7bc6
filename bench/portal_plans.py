"""The plans of the SQL the portal's API runs, asked of the database as TAP's reader runs it (SQLite: a
read-only connection with the translated ADQL's functions and the guarded ``filter_matches``; PostgreSQL:
the reader role, an anonymous viewer), printed; and a stop if any plan reads a store table whole
(SQLite ``SCAN <table>``, PostgreSQL ``Seq Scan on <table or partition>``) instead of through an index.

PostgreSQL reads a partition of a few pages (an empty or nearly empty one: the default partition, the
month just begun) by a sequential scan, rightly: it costs less than an index there. Such a scan is
allowed when the partition holds at most ``SMALL_PAGES`` pages, and the plan says so; any other stops."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape

from starling.store.access import READER_ROLE, VIEWER_SETTING
from starling.store.base import TABLES

_SQLITE_SCAN = re.compile(r"^SCAN (\w+)")
_POSTGRES_SCAN = re.compile(r"Seq Scan on (\w+)")
SMALL_PAGES = 32  # 256 kB
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _is_store_table(name: str) -> bool:
    """A store table, or one of its partitions (``alerts_p60810``, ``alerts_default``)."""
    return any(name == table or name.startswith(f"{table}_") for table in TABLES)


def _sqlite_plan(location: str, sql: str) -> list[str]:
    import sqlite3

    from starling.adql import sqlite_functions
    from starling.store.access import guard_sqlite

    db = sqlite3.connect(f"file:{location}?mode=ro", uri=True)
    try:
        sqlite_functions.register(db)
        guard_sqlite(db, None)
        rows = db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
    finally:
        db.close()
    depth = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


def _postgres_plan(location: str, sql: str) -> list[str]:
    import psycopg

    with psycopg.connect(location) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
        conn.execute("SELECT set_config(%s, '', true)", (VIEWER_SETTING,))
        rows = conn.execute(f"EXPLAIN (COSTS OFF) {sql}").fetchall()
    return ["  " + str(row[0]) for row in rows]


def _postgres_pages(location: str, relations: list[str]) -> dict[str, int]:
    """The pages each relation holds (as the last ANALYZE counted them)."""
    import psycopg

    with psycopg.connect(location) as conn:
        rows = conn.execute(
            "SELECT relname, relpages FROM pg_class WHERE relname = ANY(%s)", (relations,)
        ).fetchall()
    return {str(name): int(pages) for name, pages in rows}


def _whole_table_reads(location: str, lines: list[str], backend: str) -> tuple[list[str], list[str]]:
    """(the store tables the plan reads whole, the small partitions it scans: allowed)."""
    pattern = _POSTGRES_SCAN if backend == "postgres" else _SQLITE_SCAN
    scanned = [
        m.group(1) for line in lines if (m := pattern.search(line.strip())) and _is_store_table(m.group(1))
    ]
    if backend != "postgres" or not scanned:
        return scanned, []
    pages = _postgres_pages(location, scanned)
    small = [name for name in scanned if pages.get(name, SMALL_PAGES + 1) <= SMALL_PAGES]
    return [name for name in scanned if name not in small], [
        f"{name} ({pages[name]} pages)" for name in small
    ]


def _compact(lines: list[str], width: int = 150) -> list[str]:
    """A plan as printed: long lines cut, and a run of one or two lines repeated but for their numbers
    (q3c's index ranges of a cone) shown once, with how many there were."""
    cut = [line if len(line) <= width else line[: width - 3] + "..." for line in lines]
    keys = [_NUMBER.sub("N", line) for line in cut]
    shown: list[str] = []
    index = 0
    while index < len(cut):
        for period in (1, 2):
            pattern = keys[index : index + period]
            repeats = 1
            while keys[index + repeats * period : index + (repeats + 1) * period] == pattern:
                repeats += 1
            if repeats > 2:
                first = cut[index]
                indent = first[: len(first) - len(first.lstrip())]
                lines_above = "line" if period == 1 else "two lines"
                shown += [
                    *cut[index : index + period],
                    f"{indent}(the {lines_above} above x{repeats}, values aside)",
                ]
                index += repeats * period
                break
        else:
            shown.append(cut[index])
            index += 1
    return shown


def _shown(sql: str) -> str:
    """The part of a statement that decides its plan: from its FROM on (its columns left out)."""
    at = sql.find(" FROM ")
    return ("SELECT ..." + sql[at:]) if at >= 0 else sql


def check_plans(location: str, statements: list[str], console: Console, label: str) -> None:
    """Print each statement's plan; stop (SystemExit) if any reads a store table whole."""
    backend = "postgres" if location.startswith("postgresql") else "sqlite"
    console.print(f"portal {label}: the {len(statements)} distinct statements the API ran, and their plans")
    faults: list[tuple[str, list[str]]] = []
    for sql in statements:
        lines = _postgres_plan(location, sql) if backend == "postgres" else _sqlite_plan(location, sql)
        console.print(f"  [bold]{escape(_shown(sql))}[/]")
        for line in _compact(lines):
            console.print(f"  {escape(line)}", highlight=False)
        scans, small = _whole_table_reads(location, lines, backend)
        if small:
            console.print(f"    (scanned whole, being small: {', '.join(small)})", highlight=False)
        if scans:
            faults.append((sql, scans))
    if faults:
        details = "\n".join(f"{sql}\n    {'; '.join(scans)}" for sql, scans in faults)
        raise SystemExit(
            f"portal {label}: a query of the API reads a table whole, not through an index:\n{details}"
        )
    console.print(
        f"portal {label}: every plan reads the store through its indexes (no table scanned whole but "
        f"partitions of at most {SMALL_PAGES} pages)"
        if backend == "postgres"
        else f"portal {label}: every plan reads the store through its indexes (no table scanned whole)"
    )
