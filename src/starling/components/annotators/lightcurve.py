"""``lc-features``: light-curve features per band from each alert's own history, for the whole batch.

The detections of every alert of the batch (the triggering one included) are laid out as flat
columns and grouped by (alert, band) with one sort; the simple features come from numpy group
reductions, and the standard set from the ``light-curve`` package (Rust), which takes all the
groups in one call. Per band (``g``, ``r`` ...):

- ``n_det``, ``first_mjd``, ``last_mjd``, ``span_days``;
- ``peak_mag`` (brightest) and ``peak_mjd``; ``latest_mag``;
- ``rise_rate`` (mag/day from the first detection to the peak; positive: brightening; absent when the
  first detection is the peak) and ``decline_rate`` (mag/day from the peak to the last; positive:
  fading);
- with three detections or more: ``amplitude``, ``standard_deviation``, ``linear_trend`` (mag/day),
  ``stetson_k`` and ``beyond_1_std`` (``light-curve``).

And ``colors``: for each pair of neighbouring bands both seen, the latest magnitude in the bluer band
less the latest in the redder (``g_r`` ...), and the days between the two (``g_r_dt``).

A detection without a finite magnitude and time (a sentinel, a negative flux) is left out, and a
feature that cannot be computed (one point, two at one time) is None: never NaN or an infinity.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

import light_curve as lc
import numpy as np

from starling.alert.model import Alert
from starling.alert.photometry import finite
from starling.core.component import AnnotationField, Annotator, ComponentConfig

BANDS = ("u", "g", "r", "i", "z", "y")
_PACKAGE_FEATURES = ("amplitude", "standard_deviation", "linear_trend", "stetson_k", "beyond_1_std")
_EXTRACTOR = lc.Extractor(
    lc.Amplitude(), lc.StandardDeviation(), lc.LinearTrend(), lc.StetsonK(), lc.BeyondNStd(1.0)
)
_COLUMNS = {
    name: _EXTRACTOR.names.index(source)
    for name, source in (
        ("amplitude", "amplitude"),
        ("standard_deviation", "standard_deviation"),
        ("linear_trend", "linear_trend"),
        ("stetson_k", "stetson_K"),
        ("beyond_1_std", "beyond_1_std"),
    )
}
MIN_POINTS_FOR_PACKAGE = 3


class LightCurveConfig(ComponentConfig):
    pass


def _outputs() -> dict[str, AnnotationField]:
    per_band = {
        "n_det": AnnotationField("int", "", "detections in this band, this one included"),
        "first_mjd": AnnotationField("float", "d", "first detection in this band"),
        "last_mjd": AnnotationField("float", "d", "last detection in this band"),
        "span_days": AnnotationField("float", "d", "last less first detection time in this band"),
        "peak_mag": AnnotationField("float", "mag", "brightest magnitude in this band"),
        "peak_mjd": AnnotationField("float", "d", "when the band was brightest"),
        "latest_mag": AnnotationField("float", "mag", "the latest magnitude in this band"),
        "rise_rate": AnnotationField("float", "mag/d", "brightening from the first detection to the peak"),
        "decline_rate": AnnotationField("float", "mag/d", "fading from the peak to the last detection"),
        "amplitude": AnnotationField("float", "mag", "half the range of magnitudes (light-curve)"),
        "standard_deviation": AnnotationField("float", "mag", "scatter of the magnitudes (light-curve)"),
        "linear_trend": AnnotationField("float", "mag/d", "slope of a straight-line fit (light-curve)"),
        "stetson_k": AnnotationField("float", "", "Stetson's K, a robust kurtosis (light-curve)"),
        "beyond_1_std": AnnotationField("float", "", "fraction of points beyond 1 sigma (light-curve)"),
    }
    found = {f"*.{key}": value for key, value in per_band.items()}
    for blue, red in itertools.pairwise(BANDS):
        found[f"colors.{blue}_{red}"] = AnnotationField("float", "mag", f"latest {blue} less latest {red}")
        found[f"colors.{blue}_{red}_dt"] = AnnotationField(
            "float", "d", f"days between those {blue} and {red}"
        )
    return found


class LightCurveFeatures(Annotator[LightCurveConfig]):
    Config: ClassVar[type[ComponentConfig]] = LightCurveConfig
    outputs: ClassVar[dict[str, AnnotationField]] = _outputs()

    def annotate(self, alerts: Sequence[Alert]) -> None:
        for alert, features in zip(alerts, batch_features(alerts), strict=True):
            alert.annotations[self.name] = features


def _flat_detections(alerts: Sequence[Alert]) -> tuple[np.ndarray, ...]:
    owner, band, mjd, mag, error = [], [], [], [], []
    for index, alert in enumerate(alerts):
        for detection in alert.history.detections:
            magnitude, time = finite(detection.mag), finite(detection.mjd)
            if magnitude is None or time is None or detection.band not in BANDS:
                continue
            uncertainty = finite(detection.mag_err)
            owner.append(index)
            band.append(BANDS.index(detection.band))
            mjd.append(time)
            mag.append(magnitude)
            error.append(uncertainty if uncertainty is not None and uncertainty > 0 else 0.1)
    return (
        np.array(owner, dtype=np.int64),
        np.array(band, dtype=np.int64),
        np.array(mjd, dtype=float),
        np.array(mag, dtype=float),
        np.array(error, dtype=float),
    )


def batch_features(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """The features of each alert, computed for the whole batch at once."""
    results: list[dict[str, Any]] = [{} for _ in alerts]
    owner, band, mjd, mag, error = _flat_detections(alerts)
    if owner.size == 0:
        return results
    order = np.lexsort((mjd, band, owner))  # by alert, then band, then time
    owner, band, mjd, mag, error = owner[order], band[order], mjd[order], mag[order], error[order]
    group = owner * len(BANDS) + band
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], group.size]
    counts = ends - starts
    first_mjd, last_mjd = mjd[starts], mjd[ends - 1]
    first_mag, last_mag = mag[starts], mag[ends - 1]
    # The peak: the brightest point of each group (the earliest if tied).
    by_mag = np.lexsort((mjd, mag, group))
    peak_at = by_mag[np.r_[True, group[by_mag][1:] != group[by_mag][:-1]]]
    peak_mag, peak_mjd = mag[peak_at], mjd[peak_at]
    with np.errstate(all="ignore"):  # 0/0 and x/0 (one point, or two at one time): absent below
        rise = (first_mag - peak_mag) / (peak_mjd - first_mjd)
        decline = (last_mag - peak_mag) / (last_mjd - peak_mjd)
    rich = np.flatnonzero(counts >= MIN_POINTS_FOR_PACKAGE)
    package = np.full((starts.size, len(_EXTRACTOR.names)), np.nan)
    if rich.size:
        curves = [
            (mjd[starts[g] : ends[g]], mag[starts[g] : ends[g]], error[starts[g] : ends[g]]) for g in rich
        ]
        with np.errstate(all="ignore"):
            package[rich] = _EXTRACTOR.many(curves, sorted=True, check=False, n_jobs=1, fill_value=np.nan)
    for g in range(starts.size):
        alert_index, band_name = int(owner[starts[g]]), BANDS[int(band[starts[g]])]
        features: dict[str, Any] = {
            "n_det": int(counts[g]),
            "first_mjd": _number(first_mjd[g]),
            "last_mjd": _number(last_mjd[g]),
            "span_days": _number(last_mjd[g] - first_mjd[g]),
            "peak_mag": _number(peak_mag[g]),
            "peak_mjd": _number(peak_mjd[g]),
            "latest_mag": _number(last_mag[g]),
            "rise_rate": _number(rise[g]),
            "decline_rate": _number(decline[g]),
        }
        if counts[g] >= MIN_POINTS_FOR_PACKAGE:
            for name, column in _COLUMNS.items():
                features[name] = _number(package[g, column])
        results[alert_index][band_name] = features
    for found in results:
        colors = _colors(found)
        if colors:
            found["colors"] = colors
    return results


def _number(value: Any) -> float | None:
    """A feature as a plain float, or None where it cannot be computed (NaN, an infinity)."""
    return finite(float(value))


def _colors(found: dict[str, Any]) -> dict[str, float | None]:
    colors: dict[str, float | None] = {}
    for blue, red in itertools.pairwise(BANDS):
        if blue in found and red in found:
            blue_mag, red_mag = found[blue]["latest_mag"], found[red]["latest_mag"]
            blue_mjd, red_mjd = found[blue]["last_mjd"], found[red]["last_mjd"]
            both_mags, both_times = None not in (blue_mag, red_mag), None not in (blue_mjd, red_mjd)
            colors[f"{blue}_{red}"] = finite(blue_mag - red_mag) if both_mags else None
            colors[f"{blue}_{red}_dt"] = finite(abs(blue_mjd - red_mjd)) if both_times else None
    return colors
