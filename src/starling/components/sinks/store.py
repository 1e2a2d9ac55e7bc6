"""``store``: every alert, its history and annotations, and the filters' matches, into the store."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from starling.core.component import Batch, ComponentConfig, RunContext, Sink
from starling.store.base import AlertStore
from starling.store.location import shown_location
from starling.store.open import open_store
from starling.store.retention import RetentionPolicy

log = logging.getLogger(__name__)


class StoreSinkConfig(ComponentConfig):
    path: str = Field(
        "starling.db",
        description="SQLite file (relative to the output directory) or a PostgreSQL URL "
        "(postgresql://user@host/db), which every replica of the stage can share",
    )
    cutouts: str = Field(
        "cutouts",
        description="directory of the cutout files (relative to the output directory; on a cluster a "
        "volume every replica mounts); empty: cutouts are not kept",
    )
    retention: RetentionPolicy = Field(
        default_factory=RetentionPolicy,
        description="days to keep, per table and for cutouts (absent: for ever), counted back from "
        "the newest stored alert",
    )
    prune_every_s: float = Field(3600.0, gt=0, description="how often the retention policy is applied")
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
        cutouts = None
        if self.config.cutouts:
            cutouts = Path(self.config.cutouts)
            cutouts = cutouts if cutouts.is_absolute() else context.output_dir / cutouts
        self.store = open_store(location, self.config.lock_timeout_s, cutouts)
        self._pruned_at = time.monotonic()

    def write(self, batch: Batch) -> None:
        self.store.write(batch.alerts, batch.matches)
        if (
            self.config.retention != RetentionPolicy()
            and time.monotonic() - self._pruned_at > self.config.prune_every_s
        ):
            self._pruned_at = time.monotonic()
            removed = self.store.prune(self.config.retention)
            log.info(f"retention: removed {removed}")

    def close(self) -> None:
        self.store.close()

    def describe(self) -> dict[str, Any]:
        store = open_store(self.location)
        try:
            return {"store": shown_location(self.location), "rows": store.counts()}
        finally:
            store.close()
