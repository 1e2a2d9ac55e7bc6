"""How long the store keeps each kind of row: the policy an operator sets, and what it removes.

Each table (and the cutout files) keeps its rows for a number of days, or for ever (no entry). Days
count back from the newest alert the store holds, not from the wall clock, so that a replay of an old
night is kept as a live night would be. On PostgreSQL the time-partitioned tables lose whole
partitions at once; rows in a partition that straddles the limit are deleted one by one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Tables whose rows carry the time of the alert or epoch they belong to, in the order they are pruned.
TIMED_TABLES = (
    "filter_matches",
    "annotations",
    "alerts",
    "detections",
    "non_detections",
    "forced_photometry",
)


class RetentionPolicy(BaseModel):
    """Days to keep, per table; None keeps for ever. ``cutouts`` is the cutout files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alerts: float | None = Field(None, gt=0)
    annotations: float | None = Field(None, gt=0)
    filter_matches: float | None = Field(None, gt=0)
    detections: float | None = Field(None, gt=0)
    non_detections: float | None = Field(None, gt=0)
    forced_photometry: float | None = Field(None, gt=0)
    cutouts: float | None = Field(None, gt=0)

    def limits(self, newest_mjd: float) -> dict[str, float]:
        """The time before which each governed table (or ``cutouts``) loses its rows."""
        return {name: newest_mjd - days for name, days in self.model_dump().items() if days is not None}

    @classmethod
    def parse_keep(cls, items: list[str]) -> RetentionPolicy:
        """From ``table=days`` words, as the command line takes them (``alerts=30 cutouts=7``)."""
        values: dict[str, float] = {}
        for item in items:
            name, _, days = item.partition("=")
            try:
                values[name.strip()] = float(days.removesuffix("d"))
            except ValueError as exc:
                raise ValueError(f"{item!r}: say table=days, e.g. alerts=30") from exc
        return cls.model_validate(values)
