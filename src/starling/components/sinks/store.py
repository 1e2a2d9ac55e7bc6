"""``store``: every alert, its history and annotations, and the filters' matches, into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from starling.core.component import Batch, ComponentConfig, RunContext, Sink
from starling.store.base import AlertStore
from starling.store.open import open_store


class StoreSinkConfig(ComponentConfig):
    path: str = Field("starling.db", description="SQLite file (relative to the output directory) or URL")
    lock_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="how long a write waits for another writer's lock before the "
        "store counts as down (the stage then backs off and tries again; nothing is dead-lettered)",
    )


class StoreSink(Sink[StoreSinkConfig]):
    """Writes every alert, its history, annotations and filter matches to the store, one transaction
    per batch. Idempotent: replaying alerts leaves the same rows."""

    Config: ClassVar[type[ComponentConfig]] = StoreSinkConfig
    store: AlertStore

    def setup(self, context: RunContext) -> None:
        location = self.config.path
        if "://" not in location and not Path(location).is_absolute():
            location = str(context.output_dir / location)
        self.location = location
        self.store = open_store(location, self.config.lock_timeout_s)

    def write(self, batch: Batch) -> None:
        self.store.write(batch.alerts, batch.matches)

    def close(self) -> None:
        self.store.close()

    def describe(self) -> dict[str, Any]:
        store = open_store(self.location)
        try:
            return {"store": self.location, "rows": store.counts()}
        finally:
            store.close()
