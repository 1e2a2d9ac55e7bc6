"""Trying a filter on what the store holds, before putting it live.

The latest stored alerts come as rows (``starling.store.latest``) and are judged by the same compiled
filter as the live stream, so the count is the number of those alerts the filter would have matched.
"""

from __future__ import annotations

from typing import Any

from starling.adql.fields import RowColumns
from starling.adql.language import CompiledFilter


def judge_rows(compiled: CompiledFilter, rows: list[dict[str, Any]], sample: int = 20) -> dict[str, Any]:
    """How many of ``rows`` (stored alerts, newest first) the filter matches, and a sample of them."""
    if not rows:
        return {"alerts_examined": 0, "matched": 0, "fraction": 0.0, "sample": []}
    verdicts = compiled.evaluate(RowColumns(rows))
    matched = [row for row, keep in zip(rows, verdicts, strict=True) if keep]
    shown = [{k: v for k, v in row.items() if k != "annotations"} for row in matched[:sample]]
    return {
        "alerts_examined": len(rows),
        "matched": len(matched),
        "fraction": round(len(matched) / len(rows), 6),
        "newest_mjd": rows[0]["mjd"],
        "oldest_mjd": rows[-1]["mjd"],
        "sample": shown,
    }
