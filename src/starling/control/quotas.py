"""What one user may hold, so that no user can take the broker's memory, its configuration or its
workers' time from the others. The operator sets them (``Controller.quotas``); an operator token is
not bound by them. A change past a quota is refused (403) saying which quota and its value.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Quotas(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    filters_per_user: int = Field(50, ge=0)
    watchlists_per_user: int = Field(20, ge=0)
    targets_per_list: int = Field(100_000, ge=1)
    targets_per_user: int = Field(250_000, ge=1)
    watchmaps_per_user: int = Field(20, ge=0)
    cells_per_map: int = Field(200_000, ge=1, description="MOC cells of one watchmap, over every depth")
    matches_per_minute: int = Field(
        6_000, ge=1, description="matches one user's filter passes on per minute, at most (its output volume)"
    )
    # Kafka's client quotas of each user's own principal (on the users' listener, [kafka.users]).
    kafka_consumer_byte_rate: int | None = Field(
        10 * 1024 * 1024, ge=1024, description="bytes/s a user's Kafka clients may read (null: no quota)"
    )
    kafka_producer_byte_rate: int | None = Field(
        64 * 1024, ge=1024, description="bytes/s a user's Kafka clients may write (they may write nowhere)"
    )


def over_quota(what: str, limit: int) -> str:
    return f"over your quota: at most {limit} {what} (ask the operator for more)"
