"""A ZTF history row's values, checked with a float's path written out, are what the photometry functions
give: the rows here are built both ways from drawn values (sentinels, NaN, infinities, integers, strings,
nulls) and must be equal field by field."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from starling.alert import ztf
from starling.alert.model import Detection, ForcedPoint, UpperLimit
from starling.alert.photometry import finite, jd_to_mjd, mag_to_flux_njy, reported_mag, uncertainty

_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-999.0, -99999.0, -1006.94, 0.0, -0.0, 18.5, 0.05, 27.0, 2459000.5, 1e308, -50.0, 50.0]),
    st.integers(-(2**70), 2**70),
    st.sampled_from([None, True, False, "18.5", "t", "f", "0", "1"]),
)
_ROW = st.fixed_dictionaries(
    {
        "candid": st.integers(0, 2**62),
        "jd": _VALUES,
        "fid": st.sampled_from([1, 2, 3, 4, None, "r"]),
        "ra": _VALUES,
        "dec": _VALUES,
        "magpsf": _VALUES,
        "sigmapsf": _VALUES,
        "isdiffpos": st.sampled_from(["t", "f", "1", "0", 0, 1, True, False, None]),
        "diffmaglim": _VALUES,
        "forcediffimflux": _VALUES,
        "forcediffimfluxunc": _VALUES,
        "magzpsci": _VALUES,
    }
)


def _band(fid: Any) -> str:
    return ztf.ZTF_BANDS.get(fid, f"fid{fid}")


def _reference_detection(row: dict[str, Any], mjd: float) -> Detection:
    mag, mag_err = reported_mag(row.get("magpsf")), uncertainty(row.get("sigmapsf"))
    flux, flux_err = ztf._signed_flux(mag, mag_err, row.get("isdiffpos"))
    return Detection(
        detection_id=int(row["candid"]),
        mjd=mjd,
        band=_band(row.get("fid")),
        ra=finite(row.get("ra")),
        dec=finite(row.get("dec")),
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
    )


def _reference_upper_limit(row: dict[str, Any], mjd: float) -> UpperLimit:
    limit = reported_mag(row.get("diffmaglim"))
    if limit is not None and limit <= 0.0:
        limit = None
    return UpperLimit(
        mjd, _band(row.get("fid")), limit, mag_to_flux_njy(limit) if limit is not None else None
    )


def _reference_forced(row: dict[str, Any], mjd: float) -> ForcedPoint:
    def forced(value: Any) -> float | None:
        number = finite(value)
        return None if number == -99999.0 else number

    flux_dn, zero_point = forced(row.get("forcediffimflux")), reported_mag(row.get("magzpsci"))
    flux_dn_err = uncertainty(forced(row.get("forcediffimfluxunc")))
    flux = flux_err = None
    if zero_point is not None and flux_dn is not None:
        scale = 10.0 ** ((31.4 - zero_point) / 2.5)
        flux = finite(flux_dn * scale)
        if flux_dn_err is not None:
            flux_err = finite(flux_dn_err * scale)
    return ForcedPoint(mjd, _band(row.get("fid")), flux, flux_err)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Field by field, NaN equal to NaN, types compared too."""
    return all(
        type(x) is type(y) and (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)))
        for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=500, deadline=None)
@given(_ROW, st.floats(50000, 70000))
def test_a_ztf_rows_values_are_the_photometry_functions(row: dict[str, Any], mjd: float) -> None:
    jd = finite(row["jd"])
    assert ztf._row_mjd(row) == (jd_to_mjd(jd) if jd is not None else None)
    assert _same(ztf._detection(row, mjd), _reference_detection(row, mjd))
    assert _same(ztf._upper_limit(row, mjd), _reference_upper_limit(row, mjd))
    assert _same(ztf._forced_point(row, mjd), _reference_forced(row, mjd))
