"""Trying a filter on a store: the one function the controller's API and ``starling filter try --store``
share, so the store is opened and always closed the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starling.adql.history import judge_rows
from starling.adql.language import compile_filter
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
