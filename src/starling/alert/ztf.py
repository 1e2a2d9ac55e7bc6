"""ZTF alerts (schema 3.x to 4.02) to the normalized :class:`Alert`.

A ZTF record has the triggering ``candidate`` and a ``prv_candidates`` history of up to 30 days,
whose rows with a null ``candid`` are upper limits (non-detections). Forced photometry comes as
``fp_hists`` (schema 4.x), or, in the 3.5 test stream, as ``prv_candidates`` rows that have no
``candid`` field at all and carry ``forcediffimflux``.
"""

from __future__ import annotations

from typing import Any

from starling.alert.model import Alert, Detection, ForcedPoint, History, Record, UpperLimit
from starling.alert.photometry import (
    AB_ZERO_POINT_NJY_MAG,
    jd_to_mjd,
    mag_err_to_flux_err,
    mag_to_flux_njy,
)
from starling.errors import AlertDecodeError

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
    flux_err = mag_err_to_flux_err(flux, mag_err) if mag_err is not None else None
    return flux, flux_err


def _detection(row: Record) -> Detection:
    mag, mag_err = row.get("magpsf"), row.get("sigmapsf")
    flux, flux_err = _signed_flux(mag, mag_err, row.get("isdiffpos"))
    return Detection(
        detection_id=int(row["candid"]),
        mjd=jd_to_mjd(row["jd"]),
        band=ztf_band(row.get("fid")),
        ra=row.get("ra"),
        dec=row.get("dec"),
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
    )


def _upper_limit(row: Record) -> UpperLimit:
    limit = row.get("diffmaglim")
    return UpperLimit(
        mjd=jd_to_mjd(row["jd"]),
        band=ztf_band(row.get("fid")),
        limiting_mag=limit,
        limiting_flux=mag_to_flux_njy(limit) if limit is not None else None,
    )


def _forced_point(row: Record) -> ForcedPoint:
    flux_dn, flux_dn_err, zero_point = (
        row.get("forcediffimflux"),
        row.get("forcediffimfluxunc"),
        row.get("magzpsci"),
    )
    flux = flux_err = None
    # Forced fluxes are in image counts; the image's zero point puts them on the AB nJy scale.
    if zero_point is not None and flux_dn is not None and flux_dn != _FORCED_MISSING:
        scale = 10.0 ** ((AB_ZERO_POINT_NJY_MAG - zero_point) / 2.5)
        flux = flux_dn * scale
        if flux_dn_err is not None and flux_dn_err != _FORCED_MISSING:
            flux_err = flux_dn_err * scale
    return ForcedPoint(mjd=jd_to_mjd(row["jd"]), band=ztf_band(row.get("fid")), flux=flux, flux_err=flux_err)


def build_ztf_history(record: Record) -> History:
    detections = [_detection(record["candidate"])]
    upper_limits: list[UpperLimit] = []
    forced: list[ForcedPoint] = []
    for row in record.get("prv_candidates") or ():
        if "candid" not in row:
            forced.append(_forced_point(row))
        elif row["candid"] is None or row.get("magpsf") is None:
            upper_limits.append(_upper_limit(row))
        else:
            detections.append(_detection(row))
    for row in record.get("fp_hists") or ():
        forced.append(_forced_point(row))
    detections.sort(key=lambda d: d.mjd)
    upper_limits.sort(key=lambda u: u.mjd)
    forced.sort(key=lambda f: f.mjd)
    return History(tuple(detections), tuple(upper_limits), tuple(forced))


def normalize_ztf(record: Record, origin: str = "") -> Alert:
    """Turn a decoded ZTF record into an Alert; a record that lacks what every ZTF alert has is refused."""
    try:
        candidate = record["candidate"]
        mag, mag_err = candidate.get("magpsf"), candidate.get("sigmapsf")
        flux, flux_err = _signed_flux(mag, mag_err, candidate.get("isdiffpos"))
        drb = candidate.get("drb")
        return Alert(
            survey="ztf",
            alert_id=int(record["candid"]),
            object_id=str(record["objectId"]),
            ra=float(candidate["ra"]),
            dec=float(candidate["dec"]),
            mjd=jd_to_mjd(candidate["jd"]),
            band=ztf_band(candidate.get("fid")),
            mag=mag,
            mag_err=mag_err,
            flux=flux,
            flux_err=flux_err,
            reliability=drb if drb is not None else candidate.get("rb"),
            schema_version=str(record.get("schemavsn", "")),
            record=record,
            history_builder=build_ztf_history,
            origin=origin,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AlertDecodeError(
            f"record does not fit the ZTF alert model: {type(exc).__name__}: {exc}"
        ) from exc
