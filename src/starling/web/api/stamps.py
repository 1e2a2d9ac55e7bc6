"""A cutout as a FITS file and as a picture.

The store keeps a stamp as the survey sent it: ZTF's gzipped FITS, Rubin's FITS. :func:`fits_file`
gives the FITS itself (ungzipped: what a FITS reader opens). :func:`stamp_png` draws it as astronomers
look at stamps: scaled by zscale (astropy's ``ZScaleInterval``, the IRAF/DS9 default, which shows the
sky's noise and a source without one bright pixel flattening the rest), a linear grey ramp between its
limits, blank (NaN) pixels in one fixed colour, and the array's first row at the bottom, as DS9 shows a
FITS image; the picture is not rotated or resampled, so north is where the survey put it.
"""

from __future__ import annotations

import io
import warnings
import zlib

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from PIL import Image

# What a blank pixel is drawn in: a colour no grey level is, so it is never taken for sky.
BLANK_RGB = (255, 0, 255)
# A stamp is tens of kilobytes; this bounds what a corrupt or hostile gzip stream may grow to.
MAX_FITS_BYTES = 64 * 1024 * 1024
_GZIP = b"\x1f\x8b"


class StampError(ValueError):
    """The stored bytes are not a FITS image this service can read."""


def fits_file(stored: bytes) -> bytes:
    """The FITS file of a stored stamp: the bytes themselves, or ungzipped when the survey gzipped them."""
    if not stored.startswith(_GZIP):
        return stored
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip header and trailer around deflate
    try:
        data = unzip.decompress(stored, MAX_FITS_BYTES)
    except zlib.error as exc:
        raise StampError(f"the stored stamp is not valid gzip: {exc}") from None
    if unzip.unconsumed_tail:
        raise StampError(f"the stored stamp ungzips to more than {MAX_FITS_BYTES} bytes")
    return data


def stamp_array(fits_bytes: bytes) -> npt.NDArray[np.float64]:
    """The stamp's image: the first HDU with a two-dimensional array (Rubin's stamps also carry the
    variance and the PSF after it)."""
    try:
        with warnings.catch_warnings():
            # ZTF's stamps carry a SIMPLE card astropy finds loosely formatted; the data reads fine.
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(fits_bytes), memmap=False) as hdus:
                for hdu in hdus:
                    data = getattr(hdu, "data", None)
                    if isinstance(data, np.ndarray) and data.ndim == 2 and data.size:
                        return np.asarray(data, dtype=np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise StampError(f"the stored stamp is not a FITS file astropy reads: {exc}") from None
    raise StampError("the stored stamp holds no two-dimensional image")


def grey_levels(image: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """0-255 grey of each finite pixel, linear between the zscale limits, clipped (blank pixels: 0)."""
    finite = np.isfinite(image)
    levels = np.zeros(image.shape, dtype=np.uint8)
    if not finite.any():
        return levels
    low, high = ZScaleInterval().get_limits(image[finite])
    if not high > low:  # a flat stamp: one mid grey
        levels[finite] = 128
        return levels
    scaled = np.clip((image[finite] - low) / (high - low), 0.0, 1.0)
    levels[finite] = np.round(scaled * 255.0).astype(np.uint8)
    return levels


def stamp_png(fits_bytes: bytes) -> bytes:
    """The stamp drawn as a PNG of its own size (one picture pixel per stamp pixel)."""
    image = stamp_array(fits_bytes)
    grey = grey_levels(image)
    rgb = np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    rgb[~np.isfinite(image)] = BLANK_RGB
    # FITS counts rows from the bottom, a picture from the top.
    picture = Image.fromarray(np.ascontiguousarray(np.flipud(rgb)))  # height x width x 3 bytes: RGB
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=False)
    return out.getvalue()
