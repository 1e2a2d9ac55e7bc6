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


def _detection(row: Record, mjd: float) -> Detection:
    mag, mag_err = reported_mag(row.get("magpsf")), uncertainty(row.get("sigmapsf"))
    flux, flux_err = _signed_flux(mag, mag_err, row.get("isdiffpos"))
    return Detection(
        detection_id=int(row["candid"]),
        mjd=mjd,
        band=ztf_band(row.get("fid")),
        ra=finite(row.get("ra")),
        dec=finite(row.get("dec")),
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
    )


def _upper_limit(row: Record, mjd: float) -> UpperLimit:
    limit = reported_mag(row.get("diffmaglim"))
    if limit is not None and limit <= 0.0:  # no survey's limit is that bright: a sentinel
        limit = None
    return UpperLimit(
        mjd=mjd,
        band=ztf_band(row.get("fid")),
        limiting_mag=limit,
        limiting_flux=mag_to_flux_njy(limit) if limit is not None else None,
    )


def _forced_value(value: Any) -> float | None:
    number = finite(value)
    return None if number == _FORCED_MISSING else number


def _forced_point(row: Record, mjd: float) -> ForcedPoint:
    flux_dn, zero_point = _forced_value(row.get("forcediffimflux")), reported_mag(row.get("magzpsci"))
    flux_dn_err = uncertainty(_forced_value(row.get("forcediffimfluxunc")))
    flux = flux_err = None
    # Forced fluxes are in image counts; the image's zero point puts them on the AB nJy scale.
    if zero_point is not None and flux_dn is not None:
        scale = 10.0 ** ((AB_ZERO_POINT_NJY_MAG - zero_point) / 2.5)
        flux = finite(flux_dn * scale)
        if flux_dn_err is not None:
            flux_err = finite(flux_dn_err * scale)
    return ForcedPoint(mjd=mjd, band=ztf_band(row.get("fid")), flux=flux, flux_err=flux_err)


def _row_mjd(row: Record) -> float | None:
    jd = finite(row.get("jd"))
    return jd_to_mjd(jd) if jd is not None else None


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
