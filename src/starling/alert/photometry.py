"""Conversions between AB magnitudes and fluxes in nanojansky, and between time scales.

ZTF reports difference-image PSF magnitudes; Rubin reports difference-image PSF fluxes in nJy.
Both are AB, so one zero point serves: m = 31.4 - 2.5 log10(f / nJy)  (3631 Jy = 10**(31.4/2.5) nJy).
"""

from __future__ import annotations

import math

AB_ZERO_POINT_NJY_MAG = 31.4
JD_TO_MJD_OFFSET = 2400000.5
_MAG_ERR_PER_FRACTIONAL_FLUX = 2.5 / math.log(10.0)  # ~1.0857


def mag_to_flux_njy(mag: float) -> float:
    """AB magnitude to flux density in nJy."""
    return float(10.0 ** ((AB_ZERO_POINT_NJY_MAG - mag) / 2.5))


def flux_njy_to_mag(flux: float) -> float | None:
    """Flux density in nJy to AB magnitude; None when the flux is not positive (no magnitude exists)."""
    if not flux > 0.0:  # also catches NaN
        return None
    return AB_ZERO_POINT_NJY_MAG - 2.5 * math.log10(flux)


def mag_err_to_flux_err(flux: float, mag_err: float) -> float:
    """Propagate a magnitude error to a flux error, to first order."""
    return abs(flux) * mag_err / _MAG_ERR_PER_FRACTIONAL_FLUX


def flux_err_to_mag_err(flux: float, flux_err: float) -> float | None:
    """Propagate a flux error to a magnitude error, to first order; None when the flux is not positive."""
    if not flux > 0.0:
        return None
    return _MAG_ERR_PER_FRACTIONAL_FLUX * flux_err / flux


def jd_to_mjd(jd: float) -> float:
    return jd - JD_TO_MJD_OFFSET
