"""Real-sized image stamps for synthetic alerts: a noisy background with a point source.

Making a FITS file costs about a millisecond, so a small pool is made once per generator and reused;
the bytes are what matter for sizes and decoding paths, not that every stamp is unique.
"""

from __future__ import annotations

import gzip
import io

import numpy as np
import numpy.typing as npt

ZTF_STAMP_SIDE = 63  # ZTF: 63x63 float32, gzipped FITS
RUBIN_STAMP_SIDE = 75  # Rubin stamps vary in size; 75x75 float32 FITS puts alerts at ~90 kB
ROLES = ("science", "template", "difference")


def _stamp(rng: np.random.Generator, side: int, role: str) -> npt.NDArray[np.float32]:
    y, x = np.mgrid[0:side, 0:side]
    centre = (side - 1) / 2.0
    psf = np.exp(-((x - centre) ** 2 + (y - centre) ** 2) / (2 * 1.8**2))
    background = 0.0 if role == "difference" else 150.0
    amplitude = rng.uniform(200.0, 2000.0) * (0.2 if role == "template" else 1.0)
    image = background + amplitude * psf + rng.normal(0.0, 12.0, size=(side, side))
    stamp: npt.NDArray[np.float32] = image.astype(np.float32)
    return stamp


def _fits_bytes(image: npt.NDArray[np.float32]) -> bytes:
    from astropy.io import fits

    buffer = io.BytesIO()
    fits.PrimaryHDU(image).writeto(buffer)
    return buffer.getvalue()


class CutoutPool:
    """``size`` stamps per role for each survey, in each survey's own encoding."""

    def __init__(self, rng: np.random.Generator, size: int = 8) -> None:
        self.ztf: dict[str, list[bytes]] = {}
        self.rubin: dict[str, list[bytes]] = {}
        for role in ROLES:
            self.ztf[role] = [
                gzip.compress(_fits_bytes(_stamp(rng, ZTF_STAMP_SIDE, role)), compresslevel=6)
                for _ in range(size)
            ]
            self.rubin[role] = [_fits_bytes(_stamp(rng, RUBIN_STAMP_SIDE, role)) for _ in range(size)]
