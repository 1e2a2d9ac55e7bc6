"""Built-in annotators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from starling.alert.model import Alert
from starling.alert.photometry import finite
from starling.core.component import AnnotationField, Annotator, ComponentConfig


class HistorySummaryConfig(ComponentConfig):
    pass


class HistorySummary(Annotator[HistorySummaryConfig]):
    """Summarises the light curve each alert carries: counts, time span, brightest magnitude, and
    the change in magnitude since the previous detection in the same band (negative = brightening).
    A value that cannot be computed (no magnitude: a sentinel, a negative flux) is None.
    """

    Config: ClassVar[type[ComponentConfig]] = HistorySummaryConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "n_detections": AnnotationField("int", "", "detections in the alert's history, this one included"),
        "n_upper_limits": AnnotationField("int", "", "upper limits (non-detections) in the history"),
        "n_forced": AnnotationField("int", "", "forced-photometry points in the history"),
        "first_mjd": AnnotationField("float", "d", "MJD of the first detection"),
        "span_days": AnnotationField("float", "d", "time from the first detection to this alert"),
        "peak_mag": AnnotationField("float", "mag", "brightest magnitude among the detections (AB)"),
        "delta_mag_same_band": AnnotationField(
            "float", "mag", "change since the previous detection in the same band (negative: brighter)"
        ),
    }

    def annotate(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            history = alert.history
            # (time, band, magnitude) of each detection with a magnitude; sentinels were read as None.
            measured = [
                (d.mjd, d.band, mag)
                for d in history.detections
                if (mag := finite(d.mag)) is not None and finite(d.mjd) is not None
            ]
            alert_mag = finite(alert.mag)
            same_band_before = [m for m in measured if m[1] == alert.band and m[0] < alert.mjd]
            delta = None
            if same_band_before and alert_mag is not None:
                delta = finite(alert_mag - same_band_before[-1][2])
            first = history.detections[0].mjd if history.detections else alert.mjd
            alert.annotations[self.name] = {
                "n_detections": len(history.detections),
                "n_upper_limits": len(history.upper_limits),
                "n_forced": len(history.forced),
                "first_mjd": finite(first),
                "span_days": finite(alert.mjd - first),
                "peak_mag": min(m[2] for m in measured) if measured else None,
                "delta_mag_same_band": delta,
            }
