"""Trying a filter on a store: the one function the controller's API and ``starling filter try --store``
share, so the store is opened and always closed the same way; and the controller's bounded queue of
trials, so that trials cannot take the API's threads (or its probes) from everyone else."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starling.adql.history import judge_rows
from starling.adql.language import compile_filter
from starling.core.spec import PipelineSpec
from starling.errors import StoreError
from starling.store.latest import latest_alert_rows
from starling.store.open import open_store


def try_filter_on_store(location: Path | str, expression: str, limit: int, sample: int) -> dict[str, Any]:
    """Judge the latest ``limit`` alerts stored at ``location`` with ``expression`` (a syntax error
    raises before the store is opened)."""
    compiled = compile_filter(expression)
    if isinstance(location, Path) and not location.exists():
        raise StoreError(f"no store at {location} (nothing stored yet?)")
    store = open_store(location)
    try:
        rows = latest_alert_rows(store, limit)
    finally:
        store.close()
    return judge_rows(compiled, rows, sample)


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
