"""Conversions between AB magnitudes and fluxes in nanojansky, and between time scales; and the checks
that turn the surveys' sentinels into absent values.

ZTF reports difference-image PSF magnitudes; Rubin reports difference-image PSF fluxes in nJy.
Both are AB, so one zero point serves: m = 31.4 - 2.5 log10(f / nJy)  (3631 Jy = 10**(31.4/2.5) nJy).

Real alerts carry sentinels where a value is missing: ZTF writes -999 (or -1006.94, -99999) into
magnitudes, limits and forced fluxes, Rubin writes NaN into fluxes, and fields an older schema lacks
are absent. :func:`finite`, :func:`reported_mag` and :func:`uncertainty` read such a value as None, so
nothing derived from it overflows, divides by zero or carries NaN on.
"""

from __future__ import annotations

import math
import numbers

AB_ZERO_POINT_NJY_MAG = 31.4
JD_TO_MJD_OFFSET = 2400000.5
MAG_ERR_PER_FRACTIONAL_FLUX = 2.5 / math.log(10.0)  # ~1.0857
# A magnitude (or zero point) a survey reports lies well inside this; -999, -1006.94 and 99 do not.
# Within it, 10**(-0.4 m) stays far from overflow.
MAG_LIMIT = 50.0


def finite(value: object) -> float | None:
    """A real, finite number as a float; None for null, NaN, infinities, booleans and non-numbers."""
    if type(value) is float:  # the common case, kept cheap: it runs for every value of every history
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an integer beyond the floats
        return None
    return number if math.isfinite(number) else None


def reported_mag(value: object) -> float | None:
    """A magnitude as a survey reports it; None for a sentinel (-999, -1006.94, NaN ...) or null."""
    number = finite(value)
    return number if number is not None and -MAG_LIMIT < number < MAG_LIMIT else None


def uncertainty(value: object) -> float | None:
    """An uncertainty (or a noise level): a finite positive number, else None (0, -999, NaN, null)."""
    number = finite(value)
    return number if number is not None and number > 0.0 else None


def mag_to_flux_njy(mag: float) -> float:
    """AB magnitude to flux density in nJy (for a magnitude :func:`reported_mag` accepts)."""
    return float(10.0 ** ((AB_ZERO_POINT_NJY_MAG - mag) / 2.5))


def flux_njy_to_mag(flux: float | None) -> float | None:
    """Flux density in nJy to AB magnitude; None when the flux is not a positive finite number, or so far
    from any real source that the magnitude would be outside what :func:`reported_mag` accepts."""
    number = finite(flux)
    if number is None or not number > 0.0:
        return None
    return reported_mag(AB_ZERO_POINT_NJY_MAG - 2.5 * math.log10(number))


def mag_err_to_flux_err(flux: float, mag_err: float) -> float:
    """Propagate a magnitude error to a flux error, to first order."""
    return abs(flux) * mag_err / MAG_ERR_PER_FRACTIONAL_FLUX


def flux_err_to_mag_err(flux: float | None, flux_err: float | None) -> float | None:
    """Propagate a flux error to a magnitude error, to first order; None when the flux is not positive,
    the error is not an :func:`uncertainty`, or the ratio overflows or underflows to zero."""
    number, error = finite(flux), uncertainty(flux_err)
    if number is None or error is None or not number > 0.0:
        return None
    return uncertainty(MAG_ERR_PER_FRACTIONAL_FLUX * error / number)


def jd_to_mjd(jd: float) -> float:
    return jd - JD_TO_MJD_OFFSET
