"""``xmatch``: each alert's nearest match in each catalogue, within a radius, and the match count.

Writes ``alert.annotations["xmatch"][<catalogue>]``: ``id``, ``dist_arcsec``, ``count`` (rows within
the radius) and the catalogue's carried columns; an alert with no match gets ``count`` 0 only, so a
filter can ask ``xmatch.gaia.count = 0`` or ``xmatch.gaia.dist_arcsec > 1.5``. Catalogues are the
indexes ``starling catalog add`` builds, opened memory-mapped at setup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from starling.alert.model import Alert
from starling.components.annotators.catalog_index import CatalogIndex
from starling.core.component import AnnotationField, Annotator, ComponentConfig, RunContext
from starling.errors import ConfigError

CATALOGS_ENV = "STARLING_CATALOGS"


class CatalogMatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    radius_arcsec: float = Field(1.5, gt=0, le=3600)


class CrossmatchConfig(ComponentConfig):
    catalogs: list[CatalogMatch] = Field(min_length=1)
    directory: str | None = Field(
        None, description=f"where the indexes are (default ${CATALOGS_ENV}, else <output>/catalogs)"
    )


def catalogs_directory(configured: str | None, output_dir: Path) -> Path:
    if configured:
        return Path(configured) if Path(configured).is_absolute() else output_dir / configured
    return Path(os.environ[CATALOGS_ENV]) if os.environ.get(CATALOGS_ENV) else output_dir / "catalogs"


class Crossmatch(Annotator[CrossmatchConfig]):
    Config: ClassVar[type[ComponentConfig]] = CrossmatchConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "*.id": AnnotationField("string", "", "the nearest catalogue row's id"),
        "*.dist_arcsec": AnnotationField("float", "arcsec", "distance to the nearest catalogue row"),
        "*.count": AnnotationField("int", "", "catalogue rows within the radius (0: no match)"),
        "*.*": AnnotationField("float", "", "a column the catalogue carries, of the nearest row"),
    }

    def setup(self, context: RunContext) -> None:
        folder = catalogs_directory(self.config.directory, context.output_dir)
        self.indexes: dict[str, CatalogIndex] = {}
        for wanted in self.config.catalogs:
            path = folder / wanted.name
            if not (path / "meta.json").exists():
                raise ConfigError(
                    f"{self.name}: no catalogue {wanted.name!r} in {folder} (see `starling catalog add`)"
                )
            index = CatalogIndex(path)
            if wanted.radius_arcsec > index.max_radius_arcsec:
                raise ConfigError(
                    f"{self.name}: {wanted.name} is indexed for radii up to {index.max_radius_arcsec} arcsec"
                )
            self.indexes[wanted.name] = index

    def annotate(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        ra = np.fromiter((a.ra for a in alerts), dtype=float, count=len(alerts))
        dec = np.fromiter((a.dec for a in alerts), dtype=float, count=len(alerts))
        found: list[dict[str, Any]] = [{} for _ in alerts]
        for wanted in self.config.catalogs:
            index = self.indexes[wanted.name]
            matches = index.search(ra, dec, wanted.radius_arcsec)
            for position, (row, distance, count) in enumerate(
                zip(
                    matches.nearest.tolist(),
                    matches.distance_arcsec.tolist(),
                    matches.count.tolist(),
                    strict=True,
                )
            ):
                if row < 0:
                    found[position][wanted.name] = {"count": 0}
                else:
                    found[position][wanted.name] = {**index.row(row), "dist_arcsec": distance, "count": count}
        for alert, annotation in zip(alerts, found, strict=True):
            alert.annotations[self.name] = annotation
