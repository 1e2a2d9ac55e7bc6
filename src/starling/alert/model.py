"""One normalized view of an alert, whatever survey sent it.

An :class:`Alert` carries the triggering detection as plain attributes (ids, position, time as MJD,
band, magnitude *and* flux, reliability) and keeps the original decoded record untouched in
``record``. The history (earlier detections, upper limits, forced photometry) and the cutouts are
derived from the record on first access and then cached: most stages need only a few scalar
fields, and building per-epoch objects for every alert would cost more than decoding it.
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from starling.alert.photometry import finite

Survey = Literal["ztf", "rubin"]
Record = dict[str, Any]


# The points of a history are named tuples: immutable, and built in a fifth of a frozen dataclass's time
# (0.2 against 1.05 us a Detection), which a deep-field alert's ~1,200 rows pay in every stage reading them.


class Detection(NamedTuple):
    """One detection of the object: difference-image photometry at one epoch.

    ``mag`` is None when the difference flux is not positive (a negative detection has a flux but
    no magnitude); ``flux`` is in nJy and keeps its sign.
    """

    detection_id: int
    mjd: float
    band: str
    ra: float | None
    dec: float | None
    mag: float | None
    mag_err: float | None
    flux: float | None
    flux_err: float | None


class UpperLimit(NamedTuple):
    """A non-detection: the survey looked and saw nothing brighter than ``limiting_mag``."""

    mjd: float
    band: str
    limiting_mag: float | None
    limiting_flux: float | None


class ForcedPoint(NamedTuple):
    """Forced photometry at the object's position on one epoch (flux in nJy, may be negative)."""

    mjd: float
    band: str
    flux: float | None
    flux_err: float | None


class History:
    """An object's light curve as known at the time of the alert, oldest first.

    ``detections`` includes the triggering detection, so ``len(detections)`` is the number of
    detections the alert carries. Each of the three parts may be built on first use
    (:meth:`built_by`): a deep-field alert's ~800 forced points cost as much as the rest, and a stage
    whose filters count detections never asks for them.
    """

    __slots__ = ("_builders", "_parts")

    def __init__(
        self,
        detections: tuple[Detection, ...],
        upper_limits: tuple[UpperLimit, ...],
        forced: tuple[ForcedPoint, ...],
    ) -> None:
        self._parts: list[tuple[Any, ...] | None] = [detections, upper_limits, forced]
        self._builders: tuple[Callable[[], tuple[Any, ...]], ...] = ()

    @classmethod
    def built_by(
        cls,
        detections: Callable[[], tuple[Detection, ...]],
        upper_limits: Callable[[], tuple[UpperLimit, ...]],
        forced: Callable[[], tuple[ForcedPoint, ...]],
    ) -> History:
        """A history whose parts are built by these, each on its first use."""
        history = cls((), (), ())
        history._parts = [None, None, None]
        history._builders = (detections, upper_limits, forced)
        return history

    def _part(self, index: int) -> tuple[Any, ...]:
        part = self._parts[index]
        if part is None:
            part = self._parts[index] = self._builders[index]()
        return part

    @property
    def detections(self) -> tuple[Detection, ...]:
        return self._part(0)

    @property
    def upper_limits(self) -> tuple[UpperLimit, ...]:
        return self._part(1)

    @property
    def forced(self) -> tuple[ForcedPoint, ...]:
        return self._part(2)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return all(self._part(i) == other._part(i) for i in range(3))

    def __hash__(self) -> int:
        return hash(tuple(self._part(i) for i in range(3)))

    def __repr__(self) -> str:
        return (
            f"History({len(self.detections)} detections, {len(self.upper_limits)} upper limits, "
            f"{len(self.forced)} forced)"
        )


class Cutout:
    """An image stamp, kept as the bytes the survey sent until someone asks for pixels."""

    __slots__ = ("data", "name")

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    @property
    def fits_bytes(self) -> bytes:
        """The FITS file, decompressed if it came gzipped (ZTF sends .fits.gz, Rubin plain FITS)."""
        if self.data[:2] == b"\x1f\x8b":
            return gzip.decompress(self.data)
        return self.data

    def to_array(self) -> npt.NDArray[np.float32]:
        """Decode the stamp into a 2-D array (the first HDU that holds an image)."""
        from astropy.io import fits  # imported here: astropy costs ~0.5 s to import
        from astropy.io.fits.verify import VerifyWarning

        # Real ZTF stamps carry a SIMPLE card astropy calls non-standard; the pixels are fine.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            with fits.open(io.BytesIO(self.fits_bytes), memmap=False) as hdus:
                for hdu in hdus:
                    if hdu.data is not None and hdu.data.ndim == 2:
                        return np.asarray(hdu.data, dtype=np.float32)
        raise ValueError(f"cutout {self.name!r} holds no 2-D image")

    def __repr__(self) -> str:
        return f"Cutout({self.name!r}, {len(self.data)} bytes)"


class Alert:
    """The normalized alert. Build one through a survey codec, not by hand.

    Attributes of the triggering detection are eager; ``history`` and ``cutouts`` are lazy and
    cached. ``annotations`` maps an annotator's name to what it wrote. ``fields`` is what Starling itself
    reads of the survey's record (for Rubin, a projection: ``starling.alert.projection``); ``record`` is
    all of it, decoded on first use.
    """

    __slots__ = (
        "_cutouts",
        "_fields",
        "_fields_loader",
        "_history",
        "_history_builder",
        "_record",
        "_record_loader",
        "alert_id",
        "annotations",
        "band",
        "dec",
        "flux",
        "flux_err",
        "mag",
        "mag_err",
        "mjd",
        "object_id",
        "origin",
        "passed",
        "ra",
        "reliability",
        "schema_version",
        "survey",
    )

    def __init__(
        self,
        *,
        survey: Survey,
        alert_id: int,
        object_id: str,
        ra: float,
        dec: float,
        mjd: float,
        band: str,
        mag: float | None,
        mag_err: float | None,
        flux: float | None,
        flux_err: float | None,
        reliability: float | None,
        schema_version: str,
        record: Record | None,
        history_builder: Callable[[Record], History],
        origin: str = "",
        record_loader: Callable[[], Record] | None = None,
        fields: Record | None = None,
        fields_loader: Callable[[], Record] | None = None,
    ) -> None:
        self.survey: Survey = survey
        self.alert_id = alert_id
        self.object_id = object_id
        self.ra = ra
        self.dec = dec
        self.mjd = mjd
        self.band = band
        self.mag = mag
        self.mag_err = mag_err
        self.flux = flux
        self.flux_err = flux_err
        self.reliability = reliability
        self.schema_version = schema_version
        if record is None and record_loader is None:
            raise ValueError("an Alert needs its record or a way to load it")
        self._record = record
        self._record_loader = record_loader
        self._fields = fields
        self._fields_loader = fields_loader
        self.origin = origin
        self.annotations: dict[str, dict[str, Any]] = {}
        # The stages it has passed over Kafka, in order, each with its configuration version (and, under
        # ``<stage>.pipeline``, the controller's pipeline version it ran): its provenance. Empty embedded.
        self.passed: dict[str, int] = {}
        self._history_builder = history_builder
        self._history: History | None = None
        self._cutouts: dict[str, Cutout] | None = None

    @property
    def key(self) -> tuple[str, int]:
        """The alert's identity across the whole system: (survey, alert id)."""
        return (self.survey, self.alert_id)

    @property
    def record(self) -> Record:
        """The survey's original record, as decoded. An alert that crossed a stage boundary (see
        ``starling.transport.kafka.envelope``) decodes it from the original message on first use."""
        if self._record is None:
            assert self._record_loader is not None
            self._record = self._record_loader()
        return self._record

    @property
    def record_is_loaded(self) -> bool:
        return self._record is not None

    @property
    def fields(self) -> Record:
        """The fields of the survey's record that Starling's own code reads (the alert, its history, its
        solar-system association, its cutouts), each as in ``record``: where no projection was read, the
        record itself."""
        if self._fields is None:
            if self._fields_loader is None:
                return self.record
            self._fields = self._fields_loader()
        return self._fields

    @property
    def history(self) -> History:
        if self._history is None:
            self._history = self._history_builder(self.fields)
        return self._history

    @property
    def cutouts(self) -> dict[str, Cutout]:
        """Cutouts by role: ``science``, ``template``, ``difference`` (only those the alert carries)."""
        if self._cutouts is None:
            self._cutouts = _extract_cutouts(self.fields)
        return self._cutouts

    def summary(self) -> dict[str, Any]:
        """The survey-neutral scalar fields, as a JSON-ready dict (no record, no cutouts)."""
        return {
            "survey": self.survey,
            "alert_id": self.alert_id,
            "object_id": self.object_id,
            "ra": self.ra,
            "dec": self.dec,
            "mjd": self.mjd,
            "band": self.band,
            "mag": self.mag,
            "mag_err": self.mag_err,
            "flux": self.flux,
            "flux_err": self.flux_err,
            "reliability": self.reliability,
            "schema_version": self.schema_version,
        }

    def __repr__(self) -> str:
        return (
            f"Alert({self.survey} {self.alert_id} object={self.object_id} "
            f"ra={self.ra:.6f} dec={self.dec:.6f} mjd={self.mjd:.5f} band={self.band})"
        )


def checked_position_and_time(ra: object, dec: object, mjd: object) -> tuple[float, float, float]:
    """An alert's position (degrees) and time (MJD), each a finite number, the declination within
    +-90 and the right ascension within -360 to 720 (taken modulo 360 by the sky searches): what every
    alert has, and what the store and the sky searches need. A sentinel there (NaN, -999, null) is a
    ValueError, which the survey codecs refuse the alert for."""
    checked = finite(ra), finite(dec), finite(mjd)
    if checked[0] is None or checked[1] is None or checked[2] is None:
        raise ValueError(f"no valid position and time (ra={ra!r}, dec={dec!r}, mjd={mjd!r})")
    if not (-360.0 <= checked[0] <= 720.0 and -90.0 <= checked[1] <= 90.0):
        raise ValueError(f"no valid position and time (ra={ra!r}, dec={dec!r}, mjd={mjd!r})")
    return checked[0], checked[1], checked[2]


_CUTOUT_ROLES = {"cutoutScience": "science", "cutoutTemplate": "template", "cutoutDifference": "difference"}


def _extract_cutouts(record: Record) -> dict[str, Cutout]:
    cutouts: dict[str, Cutout] = {}
    for field, role in _CUTOUT_ROLES.items():
        value = record.get(field)
        if value is None:
            continue
        if isinstance(value, dict):  # ZTF: {"fileName": ..., "stampData": bytes}
            data = value.get("stampData")
            name = str(value.get("fileName") or role)
        else:  # Rubin: the bytes themselves
            data, name = value, role
        if isinstance(data, bytes) and data:
            cutouts[role] = Cutout(name, data)
    return cutouts
