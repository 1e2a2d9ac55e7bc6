"""Trying a filter on a store: the one way the controller's API, ``starling filter try --store`` and the
web service's portal (``POST /api/filters/try``, on its own TAP store) count a trial (``run_trial``),
the first two through one function that opens and always closes the store the same way; and the
controller's bounded queue of trials, so that trials cannot take the API's threads (or its probes) from
everyone else.

A trial is the filter as a TAP query (``starling.adql.filter_query``) over the latest stored alerts of
``starling.alert_fields``, run by TAP's own reader: what it counts is what the same query in TAP
returns, and the query is handed back to be run there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starling.adql.fields import BUILTIN
from starling.adql.filter_query import VIEW, adql_identifier, view_condition
from starling.core.spec import PipelineSpec
from starling.errors import StarlingError, StoreError
from starling.vo.tap_query import TapResult, TapStore

# Newest first; survey and alert_id make the order total, so that alerts of one time are cut alike.
_NEWEST_FIRST = "mjd DESC, survey, alert_id"
_SHOWN = tuple(f.name for f in BUILTIN)  # a matched alert as the sample shows it


def trial_queries(expression: str, limit: int) -> tuple[str, str]:
    """The ADQL of a trial: the counts over the latest ``limit`` alerts, and the alerts among them that
    ``expression`` matches, newest first (FilterSyntaxError, with its position, for a bad filter)."""
    condition = view_condition(expression)

    def latest(*columns: str) -> str:
        names = ", ".join(adql_identifier(c) for c in dict.fromkeys([*columns, *condition.columns]))
        return f"(SELECT TOP {limit} {names} FROM {VIEW} ORDER BY {_NEWEST_FIRST}) AS latest"

    counts = (
        f"SELECT COUNT(*) AS examined, SUM(CASE WHEN {condition.adql} THEN 1 ELSE 0 END) AS matched, "
        f"MAX(mjd) AS newest_mjd, MIN(mjd) AS oldest_mjd FROM {latest('mjd', 'survey', 'alert_id')}"
    )
    matches = (
        f"SELECT {', '.join(_SHOWN)} FROM {latest(*_SHOWN)} WHERE {condition.adql} ORDER BY {_NEWEST_FIRST}"
    )
    return counts, matches


def try_filter_on_store(location: Path | str, expression: str, limit: int, sample: int) -> dict[str, Any]:
    """Judge the latest ``limit`` alerts stored at ``location`` with ``expression`` (a syntax error
    raises before the store is opened), through a reader of its own: see :func:`run_trial`. Any failure
    of the store or of the query in it is a StoreError."""
    queries = trial_queries(expression, limit)
    if isinstance(location, Path) and not location.exists():
        raise StoreError(f"no store at {location} (nothing stored yet?)")
    tap = TapStore(location, pool_size=1, describe=False)
    try:
        return run_trial(tap, queries, sample)
    except StarlingError as exc:  # the store cannot be read, or the query failed in it
        raise StoreError(str(exc)) from exc
    finally:
        tap.close()


def run_trial(tap: TapStore, queries: tuple[str, str], sample: int) -> dict[str, Any]:
    """Run a trial's ``queries`` (:func:`trial_queries`) on an open store, the controller's reader of
    one trial or the web service's own: how many alerts it matches, a ``sample`` of them, and the
    ``query`` (ADQL, for TAP) that selects them with the ``sql`` it ran as. Raises the store's errors as
    they are (TapQueryError, OutageError, StoreError: a query cut short by its time limit is one), so
    that each caller answers them in its own terms."""
    counts, query = queries
    ((examined, matched, newest, oldest),) = _whole(tap.run(counts, 1))
    result = tap.run(query, sample)
    rows = _whole(result)
    found: dict[str, Any] = {"alerts_examined": examined, "matched": matched or 0, "fraction": 0.0}
    if examined:
        found["fraction"] = round(found["matched"] / examined, 6)
        found |= {"newest_mjd": newest, "oldest_mjd": oldest}
    found["sample"] = [dict(zip(_SHOWN, row, strict=True)) for row in rows]
    return found | {"query": query, "sql": result.sql}


def _whole(result: TapResult) -> list[tuple[Any, ...]]:
    """Every row of a result; a result cut short (its time limit, the store gone mid-read) would count
    fewer alerts than there are, so it is an error rather than an answer."""
    rows = result.all_rows()
    if result.end.error is not None:
        raise StoreError(f"the trial did not finish: {result.end.error}")
    return rows


def pipeline_store(spec: PipelineSpec, output_dir: Path) -> Path | str | None:
    """Where the pipeline's ``store`` sink writes: its URL (PostgreSQL, which every replica and the
    controller reach alike), or its SQLite file under ``output_dir``; None without a store sink."""
    for sink in spec.sinks:
        if sink.use == "store":
            path = str(sink.config.get("path", "starling.db"))
            if "://" in path or Path(path).is_absolute():
                return path
            return output_dir / path
    return None


T = TypeVar("T")


class TrialsBusyError(Exception):
    """Every trial slot is taken: come back in a moment (HTTP 429)."""


class Trials:
    """Trials run on their own threads (``workers``), a few more may wait (``waiting``); past that a
    trial is refused at once, and one that runs past ``timeout_s`` is given up by whoever asked
    (TimeoutError; it finishes in the background, bounded by its row limit, holding its slot)."""

    def __init__(self, workers: int = 1, waiting: int = 2, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="trial")
        self._slots = threading.BoundedSemaphore(workers + waiting)

    def run(self, work: Callable[..., T], *args: Any) -> T:
        if not self._slots.acquire(blocking=False):
            raise TrialsBusyError("other trials are running; try again in a moment")
        future = self._pool.submit(work, *args)
        future.add_done_callback(lambda _: self._slots.release())
        return future.result(timeout=self.timeout_s)
