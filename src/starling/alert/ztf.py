"""ZTF alerts (schema 3.x to 4.02) to the normalized :class:`Alert`.

A ZTF record has the triggering ``candidate`` and a ``prv_candidates`` history of up to 30 days,
whose rows with a null ``candid`` are upper limits (non-detections). Forced photometry comes as
``fp_hists`` (schema 4.x), or, in the 3.5 test stream, as ``prv_candidates`` rows that have no
``candid`` field at all and carry ``forcediffimflux``.

Sentinels become absent values: a magnitude, limit or zero point of -999 (or NaN, or null), a forced
flux of -99999, an uncertainty that is not positive. A history row without a finite time is left out
(it cannot be placed on the light curve); an alert without a finite time and position is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from starling.alert.model import (
    Alert,
    Detection,
    ForcedPoint,
    History,
    Record,
    UpperLimit,
    checked_position_and_time,
)
from starling.alert.photometry import (
    AB_ZERO_POINT_NJY_MAG,
    JD_TO_MJD_OFFSET,
    MAG_ERR_PER_FRACTIONAL_FLUX,
    MAG_LIMIT,
    finite,
    jd_to_mjd,
    mag_err_to_flux_err,
    mag_to_flux_njy,
    reported_mag,
    uncertainty,
)

ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
# ZTF marks missing forced-photometry values with this sentinel rather than null.
_FORCED_MISSING = -99999.0


def ztf_band(fid: Any) -> str:
    return ZTF_BANDS.get(fid, f"fid{fid}")


def _signed_flux(
    mag: float | None, mag_err: float | None, isdiffpos: Any
) -> tuple[float | None, float | None]:
    """Difference flux in nJy; ZTF gives |flux| as a magnitude and the sign in ``isdiffpos``."""
    if mag is None:
        return None, None
    flux = mag_to_flux_njy(mag)
    if isdiffpos in ("f", "0", 0, False):
        flux = -flux
    flux_err = finite(mag_err_to_flux_err(flux, mag_err)) if mag_err is not None else None
    return flux, flux_err


# A history has tens of rows of a dozen values each: the rows' values are checked here with the photometry
# functions' own rules, a float's path written out (a call per value was most of a history's time). Each
# gives what the function named beside it gives (``tests/alert/test_ztf_rows.py`` checks them on drawn rows).
_INF = math.inf


def _real(value: Any) -> float | None:  # finite()
    if type(value) is float:
        return value if -_INF < value < _INF else None
    return finite(value)


def _detection(row: Record, mjd: float) -> Detection:
    magpsf, sigmapsf = row.get("magpsf"), row.get("sigmapsf")
    if type(magpsf) is float:  # reported_mag()
        mag = magpsf if -MAG_LIMIT < magpsf < MAG_LIMIT else None
    else:
        mag = reported_mag(magpsf)
    if type(sigmapsf) is float:  # uncertainty()
        mag_err = sigmapsf if 0.0 < sigmapsf < _INF else None
    else:
        mag_err = uncertainty(sigmapsf)
    flux = flux_err = None
    if mag is not None:  # _signed_flux()
        flux = 10.0 ** ((AB_ZERO_POINT_NJY_MAG - mag) / 2.5)
        if row.get("isdiffpos") in ("f", "0", 0, False):
            flux = -flux
        if mag_err is not None:
            flux_err = _real(abs(flux) * mag_err / MAG_ERR_PER_FRACTIONAL_FLUX)
    fid: Any = row.get("fid")
    return Detection(
        detection_id=int(row["candid"]),
        mjd=mjd,
        band=ZTF_BANDS.get(fid) or f"fid{fid}",
        ra=_real(row.get("ra")),
        dec=_real(row.get("dec")),
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
    )


def _upper_limit(row: Record, mjd: float) -> UpperLimit:
    diffmaglim = row.get("diffmaglim")
    if type(diffmaglim) is float:  # reported_mag()
        limit = diffmaglim if -MAG_LIMIT < diffmaglim < MAG_LIMIT else None
    else:
        limit = reported_mag(diffmaglim)
    if limit is not None and limit <= 0.0:  # no survey's limit is that bright: a sentinel
        limit = None
    fid: Any = row.get("fid")
    return UpperLimit(
        mjd=mjd,
        band=ZTF_BANDS.get(fid) or f"fid{fid}",
        limiting_mag=limit,
        limiting_flux=10.0 ** ((AB_ZERO_POINT_NJY_MAG - limit) / 2.5) if limit is not None else None,
    )


def _forced_value(value: Any) -> float | None:
    number = _real(value)
    return None if number == _FORCED_MISSING else number


def _forced_point(row: Record, mjd: float) -> ForcedPoint:
    flux_dn, zero_point = _forced_value(row.get("forcediffimflux")), reported_mag(row.get("magzpsci"))
    flux_dn_err = uncertainty(_forced_value(row.get("forcediffimfluxunc")))
    flux = flux_err = None
    # Forced fluxes are in image counts; the image's zero point puts them on the AB nJy scale.
    if zero_point is not None and flux_dn is not None:
        scale = 10.0 ** ((AB_ZERO_POINT_NJY_MAG - zero_point) / 2.5)
        flux = _real(flux_dn * scale)
        if flux_dn_err is not None:
            flux_err = _real(flux_dn_err * scale)
    fid: Any = row.get("fid")
    return ForcedPoint(mjd=mjd, band=ZTF_BANDS.get(fid) or f"fid{fid}", flux=flux, flux_err=flux_err)


def _row_mjd(row: Record) -> float | None:
    jd = row.get("jd")
    if type(jd) is float:
        return jd - JD_TO_MJD_OFFSET if -_INF < jd < _INF else None
    number = finite(jd)
    return jd_to_mjd(number) if number is not None else None


def build_ztf_history(record: Record) -> History:
    detections: list[Detection] = []
    upper_limits: list[UpperLimit] = []
    forced: list[ForcedPoint] = []
    mjd = _row_mjd(record["candidate"])
    if mjd is not None:
        detections.append(_detection(record["candidate"], mjd))
    for row in record.get("prv_candidates") or ():
        mjd = _row_mjd(row)
        if mjd is None:
            continue
        if "candid" not in row:
            forced.append(_forced_point(row, mjd))
        elif row["candid"] is None or row.get("magpsf") is None:
            upper_limits.append(_upper_limit(row, mjd))
        else:
            detections.append(_detection(row, mjd))
    for row in record.get("fp_hists") or ():
        mjd = _row_mjd(row)
        if mjd is not None:
            forced.append(_forced_point(row, mjd))
    detections.sort(key=lambda d: d.mjd)
    upper_limits.sort(key=lambda u: u.mjd)
    forced.sort(key=lambda f: f.mjd)
    return History(tuple(detections), tuple(upper_limits), tuple(forced))


def normalize_ztf(
    record: Record, origin: str = "", record_loader: Callable[[], Record] | None = None
) -> Alert:
    """Turn a decoded ZTF record into an Alert. A record that lacks what every ZTF alert has raises (a
    KeyError, a ValueError ...); ``starling.alert.decoder.normalize_record`` words it as a refusal.
    With ``record_loader``, ``record`` is a projection (``projection.ZTF_FIELDS``): the alert's fields,
    its whole record loaded on first use."""
    candidate = record["candidate"]
    mag, mag_err = reported_mag(candidate.get("magpsf")), uncertainty(candidate.get("sigmapsf"))
    flux, flux_err = _signed_flux(mag, mag_err, candidate.get("isdiffpos"))
    drb = finite(candidate.get("drb"))
    ra, dec, mjd = checked_position_and_time(candidate["ra"], candidate["dec"], _row_mjd(candidate))
    return Alert(
        survey="ztf",
        alert_id=int(record["candid"]),
        object_id=str(record["objectId"]),
        ra=ra,
        dec=dec,
        mjd=mjd,
        band=ztf_band(candidate.get("fid")),
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
        reliability=drb if drb is not None else finite(candidate.get("rb")),
        schema_version=str(record.get("schemavsn", "")),
        record=None if record_loader is not None else record,
        record_loader=record_loader,
        fields=record if record_loader is not None else None,
        history_builder=build_ztf_history,
        origin=origin,
    )
