"""How an object row already stored takes in a new one: SQL shared by the backends (``ON CONFLICT``).

The row follows its latest alert by time, whatever order alerts arrive in; ``first_mjd`` only moves
earlier; the stored-history spans merge as :meth:`starling.store.rows.Span.merged` does, against the
row as it is when the write lands (another replica may have moved it since it was read). Each rule
makes a replay leave the row as it was.
"""

from __future__ import annotations

from starling.store.rows import HISTORY_KINDS

OBJECT_COLUMNS = (
    "survey",
    "object_id",
    "ra",
    "dec",
    "first_mjd",
    "last_mjd",
    "last_alert_id",
    "last_band",
    "last_mag",
    "last_flux",
    "n_detections",
    "n_upper_limits",
    "det_from",
    "det_through",
    "nondet_from",
    "nondet_through",
    "forced_from",
    "forced_through",
)
_FOLLOW_LATEST = (
    "ra",
    "dec",
    "last_alert_id",
    "last_band",
    "last_mag",
    "last_flux",
    "n_detections",
    "n_upper_limits",
)


def _span_merge(kind: str, least: str, greatest: str) -> list[str]:
    start, end = f"{kind}_from", f"{kind}_through"
    new, old = "excluded", "objects"
    touching = f"{new}.{start} <= {old}.{end} AND {old}.{start} <= {new}.{end}"

    def pick(column: str, joined: str) -> str:
        return (
            f"{column} = CASE WHEN {new}.{start} IS NULL THEN {old}.{column} "
            f"WHEN {old}.{start} IS NULL THEN {new}.{column} "
            f"WHEN {touching} THEN {joined} "
            f"WHEN {new}.{end} >= {old}.{end} THEN {new}.{column} ELSE {old}.{column} END"
        )

    return [
        pick(start, f"{least}({old}.{start}, {new}.{start})"),
        pick(end, f"{greatest}({old}.{end}, {new}.{end})"),
    ]


def on_conflict_merge(least: str, greatest: str) -> str:
    """The ``ON CONFLICT ... DO UPDATE`` clause; ``least``/``greatest`` are the dialect's two-argument
    minimum and maximum (SQLite ``min``/``max``, PostgreSQL ``LEAST``/``GREATEST``)."""
    assignments = [
        f"{column} = CASE WHEN excluded.last_mjd >= objects.last_mjd "
        f"THEN excluded.{column} ELSE objects.{column} END"
        for column in _FOLLOW_LATEST
    ]
    assignments.append(f"first_mjd = {least}(objects.first_mjd, excluded.first_mjd)")
    assignments.append(f"last_mjd = {greatest}(objects.last_mjd, excluded.last_mjd)")
    for kind in HISTORY_KINDS:
        assignments.extend(_span_merge(kind, least, greatest))
    return "ON CONFLICT (survey, object_id) DO UPDATE SET " + ", ".join(assignments)
