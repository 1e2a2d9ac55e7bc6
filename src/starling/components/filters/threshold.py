"""``threshold``: fixed cuts on magnitude, reliability, detections, survey and band (users write ADQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import Field

from starling.alert.model import Alert
from starling.core.component import ComponentConfig, Filter


class ThresholdConfig(ComponentConfig):
    max_mag: float | None = Field(None, description="keep alerts brighter than this (AB mag)")
    min_reliability: float | None = Field(None, ge=0.0, le=1.0, description="real/bogus score at least this")
    min_detections: int | None = Field(
        None, ge=1, description="detections in the alert's history, this one included"
    )
    surveys: tuple[str, ...] | None = Field(None, description="only these surveys (ztf, rubin)")
    bands: tuple[str, ...] | None = Field(None, description="only these bands")


class ThresholdFilter(Filter[ThresholdConfig]):
    """Cuts on magnitude, reliability, number of detections, survey and band, all optional.

    An alert that lacks a value a cut needs (no magnitude, no reliability score) does not pass it.
    Judged column-wise over the batch with numpy.
    """

    Config: ClassVar[type[ComponentConfig]] = ThresholdConfig

    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        cfg = self.config
        keep = np.ones(len(alerts), dtype=bool)
        if cfg.max_mag is not None:
            mags = np.array([a.mag if a.mag is not None else np.nan for a in alerts], dtype=float)
            keep &= mags < cfg.max_mag  # NaN compares False: no magnitude, no pass
        if cfg.min_reliability is not None:
            scores = np.array(
                [a.reliability if a.reliability is not None else np.nan for a in alerts], dtype=float
            )
            keep &= scores >= cfg.min_reliability
        if cfg.min_detections is not None:
            counts = np.array([len(a.history.detections) for a in alerts])
            keep &= counts >= cfg.min_detections
        if cfg.surveys is not None:
            keep &= np.array([a.survey in cfg.surveys for a in alerts], dtype=bool)
        if cfg.bands is not None:
            keep &= np.array([a.band in cfg.bands for a in alerts], dtype=bool)
        return [bool(v) for v in keep]
