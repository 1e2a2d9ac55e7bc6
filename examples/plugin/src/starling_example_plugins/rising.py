"""A filter that fits each light curve: an alert passes when its band's recent detections brighten
faster than a rate, fitted by least squares over the last ``days`` days.

An ADQL expression judges one alert's values; a fit over its history needs code. This is the shape of
a Python filter plugin: a pydantic config (unknown keys refused, errors name the field) and
``evaluate`` over the whole batch, returning one verdict per alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import Field

from starling.alert.model import Alert
from starling.core.component import ComponentConfig, Filter


class RisingConfig(ComponentConfig):
    min_rate_mag_per_day: float = Field(0.1, gt=0, description="brightening at least this fast")
    days: float = Field(10.0, gt=0, description="fit the detections of the last this many days")
    min_points: int = Field(3, ge=2, description="detections the fit needs, in the alert's band")


class RisingFilter(Filter[RisingConfig]):
    Config: ClassVar[type[ComponentConfig]] = RisingConfig

    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        return [self._rising(alert) for alert in alerts]

    def _rising(self, alert: Alert) -> bool:
        cfg = self.config
        points = [
            (d.mjd, d.mag)
            for d in alert.history.detections
            if d.band == alert.band and d.mag is not None and alert.mjd - cfg.days <= d.mjd <= alert.mjd
        ]
        if len(points) < cfg.min_points:
            return False
        times, mags = np.array(points).T
        if np.ptp(times) == 0:
            return False
        slope = np.polyfit(times - times[0], mags, 1)[0]  # mag per day; negative is brightening
        return bool(-slope >= cfg.min_rate_mag_per_day)
