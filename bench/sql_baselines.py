"""Lasair-style baselines for live filters: each batch of alerts loaded into an in-memory SQL database, then
every user's filter run over it as its own ``SELECT ... WHERE``, in SQLite and in DuckDB.

The load is timed with the queries: reading the alerts into rows is a cost of this design, as reading them
into columns is Starling's. A table of the batch has a column per field the filters name.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from starling.alert.model import Alert

COLUMNS = (
    ("alert_id", "BIGINT"),
    ("survey", "VARCHAR"),
    ("band", "VARCHAR"),
    ("ra", "DOUBLE"),
    ("dec", "DOUBLE"),
    ("mag", "DOUBLE"),
    ("mag_err", "DOUBLE"),
    ("flux", "DOUBLE"),
    ("flux_err", "DOUBLE"),
    ("reliability", "DOUBLE"),
    ("ndethist", "BIGINT"),
    ("span_days", "DOUBLE"),
    ("delta_mag_same_band", "DOUBLE"),
)
_DISTANCE = re.compile(r"\{distance:([-0-9.]+):([-0-9.]+)\}")

# The same great-circle distance as the Python filters' (haversine, radians taken before differences), so
# the three agree to the last bit; ``{least}`` is the dialect's two-argument minimum.
_HAVERSINE = (
    "DEGREES(2 * ASIN({least}(1.0, SQRT("
    "POWER(SIN((RADIANS({dec}) - RADIANS(dec)) / 2), 2) "
    "+ COS(RADIANS(dec)) * COS(RADIANS({dec})) * POWER(SIN((RADIANS({ra}) - RADIANS(ra)) / 2), 2)))))"
)


def in_dialect(condition: str, least: str) -> str:
    """A filter's SQL with its ``{distance:ra:dec}`` written out for a dialect."""
    return _DISTANCE.sub(lambda m: _HAVERSINE.format(least=least, ra=m.group(1), dec=m.group(2)), condition)


def rows(alerts: Sequence[Alert]) -> list[tuple[Any, ...]]:
    """The batch as rows of ``COLUMNS``, read from the alerts."""
    table = []
    for alert in alerts:
        summary = alert.annotations.get("history-summary") or {}
        table.append(
            (
                alert.alert_id,
                alert.survey,
                alert.band,
                alert.ra,
                alert.dec,
                alert.mag,
                alert.mag_err,
                alert.flux,
                alert.flux_err,
                alert.reliability,
                len(alert.history.detections),
                summary.get("span_days"),
                summary.get("delta_mag_same_band"),
            )
        )
    return table


# Each filter's output: the rows its queries returned (ids), per batch; made into sets after the timing.
Matches = dict[str, list[list[Any]]]


def sqlite_judge(conditions: Sequence[str]) -> Callable[[Sequence[Alert], Matches], None]:
    """SQLite: a fresh in-memory database per batch, the rows inserted, then one query per filter."""
    queries = [f"SELECT alert_id FROM alerts WHERE {in_dialect(c, 'MIN')}" for c in conditions]
    create = f"CREATE TABLE alerts ({', '.join(f'{name} {kind}' for name, kind in COLUMNS)})"
    insert = f"INSERT INTO alerts VALUES ({', '.join('?' * len(COLUMNS))})"

    def judge(alerts: Sequence[Alert], matched: Matches) -> None:
        database = sqlite3.connect(":memory:")
        try:
            database.execute(create)
            database.executemany(insert, rows(alerts))
            for index, query in enumerate(queries):
                matched[f"f{index}"].append(database.execute(query).fetchall())
        finally:
            database.close()

    return judge


def duckdb_judge(conditions: Sequence[str]) -> Callable[[Sequence[Alert], Matches], None]:
    """DuckDB: the batch as an Arrow table (its fastest way in), registered, then one query per filter."""
    queries = [f"SELECT alert_id FROM alerts WHERE {in_dialect(c, 'LEAST')}" for c in conditions]
    database = duckdb.connect(":memory:")
    database.execute("SET threads TO 1")  # one core, as Starling's filter stage and the SQLite baseline
    names = [name for name, _ in COLUMNS]

    def judge(alerts: Sequence[Alert], matched: Matches) -> None:
        columns = list(zip(*rows(alerts), strict=True))
        table = pa.table({name: pa.array(column) for name, column in zip(names, columns, strict=True)})
        database.register("alerts", table)
        try:
            for index, query in enumerate(queries):
                matched[f"f{index}"].append(database.execute(query).fetchall())
        finally:
            database.unregister("alerts")

    return judge


def run_batches(
    judge: Callable[[Sequence[Alert], Matches], None], alerts: Sequence[Alert], filters: int, batch_size: int
) -> Matches:
    matched: Matches = {f"f{i}": [] for i in range(filters)}
    for start in range(0, len(alerts), batch_size):
        judge(alerts[start : start + batch_size], matched)
    return matched


def matched_ids(matched: Matches) -> dict[str, set[int]]:
    return {name: {row[0] for rows in batches for row in rows} for name, batches in matched.items()}
