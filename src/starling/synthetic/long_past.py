"""The long past of a synthetic object: the history real alerts carry, beyond the last few epochs.

The short night's objects carry a handful of earlier epochs (a median of about 5 detections), which real
alerts far exceed. Measured on the real samples in ``../shared/data/realworld``:

- LSSTCam deep-field alerts (schema 10.0) carry 303-376 earlier diaSources and 395-777 forced sources,
  with about 110 kB of cutouts; new objects (the wide sky) carry 0-2 and 0-3;
- ZTF alerts (schemas 3.3-4.02) carry 10-65 ``prv_candidates`` and 10-21 ``fp_hists`` (the AMPEL archive's
  2018 alerts: 2-4 and none), with 20-41 kB of cutouts.

A profile draws, per object, how many earlier detections and forced points it has in those ranges
(``deep``: the deep fields and long-lived ZTF objects; ``wide``: the wide sky, young objects), spread over
the survey's history window before the night. They are made once per object, as arrays; each alert's
records are made from them when the alert is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from starling.alert.photometry import JD_TO_MJD_OFFSET, mag_err_to_flux_err, mag_to_flux_njy

HistoryProfile = Literal["short", "deep", "wide"]

# (detections low, high), (forced points low, high), by profile and survey: the ranges measured above.
_COUNTS: dict[str, dict[str, tuple[tuple[int, int], tuple[int, int]]]] = {
    "deep": {"rubin": ((300, 380), (390, 780)), "ztf": ((10, 65), (10, 21))},
    "wide": {"rubin": ((0, 2), (0, 3)), "ztf": ((2, 14), (0, 10))},
}
_WINDOW_DAYS = {"rubin": 365.0, "ztf": 30.0}
_ZTF_ZERO_POINT = 26.0  # magzpsci: forced fluxes are in DN on this zero point


@dataclass(frozen=True, slots=True)
class LongPast:
    """An object's earlier epochs, oldest first: detections (with magnitudes) and forced points."""

    mjd: npt.NDArray[np.float64]
    band: npt.NDArray[np.int64]
    mag: npt.NDArray[np.float64]
    mag_err: npt.NDArray[np.float64]
    source_id: npt.NDArray[np.int64]
    forced_mjd: npt.NDArray[np.float64]
    forced_band: npt.NDArray[np.int64]
    forced_mag: npt.NDArray[np.float64]
    forced_id: npt.NDArray[np.int64]

    @property
    def ids(self) -> int:
        """How many ids (detections' and forced points') it took."""
        return len(self.source_id) + len(self.forced_id)


def make_long_past(
    rng: np.random.Generator,
    profile: HistoryProfile,
    survey: str,
    bands: int,
    before_mjd: float,
    faintest: float,
    first_source_id: int,
) -> LongPast | None:
    """Earlier epochs for one object of ``survey``, ending a day before ``before_mjd`` (None: short)."""
    if profile == "short":
        return None
    (low, high), (forced_low, forced_high) = _COUNTS[profile][survey]
    count = int(rng.integers(low, high + 1))
    forced = int(rng.integers(forced_low, forced_high + 1))
    window = _WINDOW_DAYS[survey]
    mjd = np.sort(before_mjd - 1.0 - rng.uniform(0.0, window, count))
    forced_mjd = np.sort(before_mjd - 1.0 - rng.uniform(0.0, window, forced))
    mag = rng.uniform(faintest - 3.0, faintest - 0.2, count)
    return LongPast(
        mjd=mjd,
        band=rng.integers(0, bands, count),
        mag=mag,
        mag_err=np.clip(0.02 + 0.1 * rng.random(count), 0.02, 0.5),
        source_id=first_source_id + np.arange(count, dtype=np.int64),
        forced_mjd=forced_mjd,
        forced_band=rng.integers(0, bands, forced),
        forced_mag=rng.uniform(faintest - 3.0, faintest + 1.0, forced),
        forced_id=first_source_id + count + np.arange(forced, dtype=np.int64),
    )


def rubin_rows(
    past: LongPast,
    bands: tuple[str, ...],
    source: dict[str, Any],
    forced: dict[str, Any],
    object_id: int,
    ra: float,
    dec: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Earlier diaSources and forced sources, from the templates ``source`` and ``forced``."""
    detections = []
    for mjd, band, mag, err, source_id in zip(
        past.mjd, past.band, past.mag, past.mag_err, past.source_id, strict=True
    ):
        flux = mag_to_flux_njy(float(mag))
        detections.append(
            {
                **source,
                "diaSourceId": int(source_id),
                "diaObjectId": object_id,
                "midpointMjdTai": float(mjd),
                "band": bands[int(band)],
                "ra": ra,
                "dec": dec,
                "psfFlux": flux,
                "psfFluxErr": mag_err_to_flux_err(flux, float(err)),
            }
        )
    points = []
    for mjd, band, mag, forced_id in zip(
        past.forced_mjd, past.forced_band, past.forced_mag, past.forced_id, strict=True
    ):
        flux = mag_to_flux_njy(float(mag))
        points.append(
            {
                **forced,
                "diaForcedSourceId": int(forced_id),
                "diaObjectId": object_id,
                "midpointMjdTai": float(mjd),
                "band": bands[int(band)],
                "ra": ra,
                "dec": dec,
                "psfFlux": flux,
                "psfFluxErr": abs(flux) * 0.1 + 50.0,
            }
        )
    return detections, points


def ztf_rows(
    past: LongPast,
    fids: tuple[int, ...],
    previous: dict[str, Any],
    forced: dict[str, Any],
    ra: float,
    dec: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Earlier ``prv_candidates`` (detections) and ``fp_hists`` rows, from the templates given."""
    detections = [
        {
            **previous,
            "jd": float(mjd) + JD_TO_MJD_OFFSET,
            "fid": fids[int(band)],
            "candid": int(source_id),
            "isdiffpos": "t",
            "ra": ra,
            "dec": dec,
            "magpsf": float(mag),
            "sigmapsf": float(err),
            "diffmaglim": float(mag) + 1.0,
            "programid": 1,
        }
        for mjd, band, mag, err, source_id in zip(
            past.mjd, past.band, past.mag, past.mag_err, past.source_id, strict=True
        )
    ]
    points = [
        {
            **forced,
            "jd": float(mjd) + JD_TO_MJD_OFFSET,
            "fid": fids[int(band)],
            "programid": 1,
            "magzpsci": _ZTF_ZERO_POINT,
            "forcediffimflux": float(10 ** (-0.4 * (mag - _ZTF_ZERO_POINT))),
            "forcediffimfluxunc": 25.0,
            "procstatus": "0",
        }
        for mjd, band, mag in zip(past.forced_mjd, past.forced_band, past.forced_mag, strict=True)
    ]
    return detections, points
