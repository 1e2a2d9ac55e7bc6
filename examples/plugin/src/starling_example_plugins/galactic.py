"""An annotator plugin: each alert's galactic coordinates, computed for the whole batch with astropy.

The shape of an annotator plugin: a pydantic config, ``outputs`` declaring what it writes (so filters
can name ``example_galactic.b_deg`` and the documentation lists it), and ``annotate`` over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

from starling.alert.model import Alert
from starling.core.component import AnnotationField, Annotator, ComponentConfig


class GalacticConfig(ComponentConfig):
    pass


class Galactic(Annotator[GalacticConfig]):
    Config: ClassVar[type[ComponentConfig]] = GalacticConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "l_deg": AnnotationField("float", "deg", "galactic longitude"),
        "b_deg": AnnotationField("float", "deg", "galactic latitude"),
    }

    def annotate(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        ra = np.fromiter((a.ra for a in alerts), dtype=float, count=len(alerts))
        dec = np.fromiter((a.dec for a in alerts), dtype=float, count=len(alerts))
        galactic = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
        for alert, l_deg, b_deg in zip(alerts, galactic.l.deg, galactic.b.deg, strict=True):
            alert.annotations[self.name] = {"l_deg": float(l_deg), "b_deg": float(b_deg)}
