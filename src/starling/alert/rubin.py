"""Rubin (LSST) alerts, schema lsst.v3 to lsst.v11, to the normalized :class:`Alert`.

The Rubin schema renamed fields over its versions (``midPointTai`` -> ``midpointMjdTai``,
``filterName`` -> ``band``, ``decl`` -> ``dec``, ``psFlux`` -> ``psfFlux``, ``alertId`` ->
``diaSourceId``); each name below is tried newest first, so one normalizer reads every version.
Fluxes are in nJy; magnitudes are derived (AB) where the flux is positive.

Rubin writes NaN where a measurement failed; such a flux, and an uncertainty or noise that is not a
positive number, is absent (None). A history row without a finite time is left out; an alert without
a finite time and position is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from math import inf, isfinite, log10
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
    MAG_ERR_PER_FRACTIONAL_FLUX,
    MAG_LIMIT,
    finite,
    flux_err_to_mag_err,
    flux_njy_to_mag,
    uncertainty,
)

_TIME = ("midpointMjdTai", "midPointTai")
_BAND = ("band", "filterName")
_DEC = ("dec", "decl")
_FLUX = ("psfFlux", "psFlux")
_FLUX_ERR = ("psfFluxErr", "psFluxErr")
# Rubin's non-detection limits give the noise; a 5-sigma limit is the convention for "not seen".
_UPPER_LIMIT_SIGMA = 5.0

_VERSION_IN_NAME = re.compile(r"\.v(\d+)_(\d+)\.")


def schema_version_from_name(full_name: str) -> str:
    """``lsst.v7_1.alert`` -> ``7.1``; the name itself for schemas outside that pattern (e.g. ELAsTiCC)."""
    match = _VERSION_IN_NAME.search(full_name + ".")
    return f"{match.group(1)}.{match.group(2)}" if match else full_name


def _first(row: Record, names: tuple[str, ...]) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def _photometry(row: Record) -> tuple[float | None, float | None]:
    """The row's PSF flux and its uncertainty (nJy), each None where Rubin wrote NaN or null."""
    return finite(_first(row, _FLUX)), uncertainty(_first(row, _FLUX_ERR))


def _names(rows: list[Record], *wanted: tuple[str, ...]) -> list[str]:
    """For each of ``wanted``, the name its rows use (newest first), or "" (no Avro field is named so:
    ``row.get("")`` is None). Every row of one Avro array has one schema, so the first row answers for
    all: the lookups are made once per array, not per row."""
    first = rows[0]
    return [next((name for name in names if name in first), "") for names in wanted]


def _real(value: Any) -> float | None:
    """:func:`finite`, with its common case (a finite float) answered inline by the loops below."""
    return value if type(value) is float and isfinite(value) else finite(value)


def _detections(rows: list[Record]) -> list[Detection]:
    if not rows:
        return []
    time, band, dec, flux_name, err_name = _names(rows, _TIME, _BAND, _DEC, _FLUX, _FLUX_ERR)
    found = []
    for row in rows:
        mjd = row.get(time)
        if not (type(mjd) is float and isfinite(mjd)) and (mjd := finite(mjd)) is None:
            continue
        flux, flux_err = row.get(flux_name), row.get(err_name)
        if type(flux) is float and 0.0 < flux < inf and type(flux_err) is float and 0.0 < flux_err < inf:
            # The common row, a positive flux with its error: flux_njy_to_mag and flux_err_to_mag_err
            # inline (they give the same; a call each per row was most of a deep history's cost).
            magnitude = AB_ZERO_POINT_NJY_MAG - 2.5 * log10(flux)
            error = MAG_ERR_PER_FRACTIONAL_FLUX * flux_err / flux
            mag = magnitude if -MAG_LIMIT < magnitude < MAG_LIMIT else None
            mag_err = error if 0.0 < error < inf else None
        else:
            flux, flux_err = _real(flux), uncertainty(flux_err)
            mag, mag_err = flux_njy_to_mag(flux), flux_err_to_mag_err(flux, flux_err)
        found.append(
            Detection(
                int(row["diaSourceId"]),
                mjd,
                str(row.get(band) or ""),
                _real(row.get("ra")),
                _real(row.get(dec)),
                mag,
                mag_err,
                flux,
                flux_err,
            )
        )
    return found


def _forced_points(rows: list[Record]) -> list[ForcedPoint]:
    """The longest list of a deep-field alert (up to ~780 rows): its loop is kept tight."""
    if not rows:
        return []
    time, band, flux_name, err_name = _names(rows, _TIME, _BAND, _FLUX, _FLUX_ERR)
    found = []
    for row in rows:
        mjd = row.get(time)
        if not (type(mjd) is float and isfinite(mjd)) and (mjd := finite(mjd)) is None:
            continue
        flux, error = row.get(flux_name), row.get(err_name)
        flux = flux if type(flux) is float and isfinite(flux) else finite(flux)
        error = error if type(error) is float and isfinite(error) and error > 0.0 else uncertainty(error)
        found.append(ForcedPoint(mjd, str(row.get(band) or ""), flux, error))
    return found


def _upper_limits(rows: list[Record]) -> list[UpperLimit]:
    if not rows:
        return []
    time, band = _names(rows, _TIME, _BAND)
    found = []
    for row in rows:
        mjd = _real(row.get(time))
        if mjd is None:
            continue
        noise = uncertainty(row.get("diaNoise"))
        limiting_flux = finite(_UPPER_LIMIT_SIGMA * noise) if noise is not None else None
        limiting_mag = flux_njy_to_mag(limiting_flux)
        found.append(UpperLimit(mjd, str(row.get(band) or ""), limiting_mag, limiting_flux))
    return found


def _by_mjd(point: Detection | UpperLimit | ForcedPoint) -> float:
    return point.mjd


def build_rubin_history(record: Record) -> History:
    """The history of a Rubin record, each part built on first use (its forced points, up to ~780 rows in
    the deep fields, only where someone asks for them)."""

    def detections() -> tuple[Detection, ...]:
        found = _detections([record["diaSource"]]) + _detections(record.get("prvDiaSources") or [])
        return tuple(sorted(found, key=_by_mjd))

    def upper_limits() -> tuple[UpperLimit, ...]:
        return tuple(sorted(_upper_limits(record.get("prvDiaNondetectionLimits") or []), key=_by_mjd))

    def forced() -> tuple[ForcedPoint, ...]:
        return tuple(sorted(_forced_points(record.get("prvDiaForcedSources") or []), key=_by_mjd))

    return History.built_by(detections, upper_limits, forced)


def _known_id(value: object) -> object | None:
    """An id, or None where Rubin writes none: null, or 0 (a solar-system source carries diaObjectId 0)."""
    return None if value is None or value == 0 else value


def _object_id(record: Record, source: Record) -> str:
    """The DiaObject's id; else, for a solar-system source, its SSObject's (``sso-<id>``); never a zero id,
    which would merge every asteroid into one object and one Kafka partition."""
    dia_object = record.get("diaObject") or {}
    dia_object_id = _known_id(dia_object.get("diaObjectId")) or _known_id(source.get("diaObjectId"))
    if dia_object_id is not None:
        return str(dia_object_id)
    ss_source = record.get("ssSource") or {}
    ss_object_id = _known_id(source.get("ssObjectId")) or _known_id(ss_source.get("ssObjectId"))
    if ss_object_id is not None:
        return f"sso-{ss_object_id}"
    return f"source-{source['diaSourceId']}"


def normalize_rubin(
    record: Record, schema_name: str, origin: str = "", record_loader: Callable[[], Record] | None = None
) -> Alert:
    """Turn a decoded Rubin record into an Alert; ``schema_name`` is the writer schema's full name. With
    ``record_loader``, ``record`` is the projection of ``starling.alert.projection`` (the fields read
    here) and the loader gives the whole record. A record that does not fit raises;
    ``starling.alert.decoder.normalize_record`` words it as a refusal."""
    source = record["diaSource"]
    flux, flux_err = _photometry(source)
    alert_id = record.get("diaSourceId", record.get("alertId"))
    if alert_id is None:
        alert_id = source["diaSourceId"]
    reliability = finite(source.get("reliability"))
    spuriousness = finite(source.get("spuriousness"))
    if reliability is None and spuriousness is not None:
        reliability = 1.0 - spuriousness
    ra, dec, mjd = checked_position_and_time(source["ra"], _first(source, _DEC), _first(source, _TIME))
    return Alert(
        survey="rubin",
        alert_id=int(alert_id),
        object_id=_object_id(record, source),
        ra=ra,
        dec=dec,
        mjd=mjd,
        band=str(_first(source, _BAND) or ""),
        mag=flux_njy_to_mag(flux),
        mag_err=flux_err_to_mag_err(flux, flux_err),
        flux=flux,
        flux_err=flux_err,
        reliability=reliability,
        schema_version=schema_version_from_name(schema_name),
        record=None if record_loader else record,
        record_loader=record_loader,
        fields=record,
        history_builder=build_rubin_history,
        origin=origin,
    )
