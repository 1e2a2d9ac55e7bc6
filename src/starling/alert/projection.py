"""Reading only what Starling reads of a Rubin or ZTF alert, with the compiled reader (``_projected``).

A real LSSTCam deep-field alert holds ~1,200 history rows of 10-136 fields each; the broker's own code
(normalizer, history, solar-system association, cutouts) reads a few of them. The decoder reads those
through a projection of the writer schema and leaves the whole record to be decoded on first use
(``Alert.record``: a Python plugin that asks for it, a delivery of the survey's record). The fields read
are the survey's values, as the whole decode gives them (``tests/alert/test_projection.py`` checks every
kept field against it on every real sample and on generated alerts of every Rubin schema 7 to 11).

Where the compiled reader is not built (no C compiler), or a schema cannot be projected, the decoder
reads whole records, as before.
"""

from __future__ import annotations

from typing import Any, Protocol

from starling.alert.model import Record

try:
    from starling.alert._projected import Projection as _CompiledProjection

    COMPILED = True
except ImportError:  # pragma: no cover - where no compiler built it
    COMPILED = False

# Every field of each Rubin record type that Starling's code reads, by the record's short name (schemas
# lsst.v3 to v11 and ELAsTiCC's: fields are renamed over versions, so old and new names are listed).
_TIME = {"midpointMjdTai", "midPointTai"}
_BAND = {"band", "filterName"}
_FLUX = {"psfFlux", "psFlux", "psfFluxErr", "psFluxErr"}
RUBIN_FIELDS: dict[str, frozenset[str]] = {
    "alert": frozenset(
        {
            "alertId",
            "diaSourceId",
            "diaSource",
            "prvDiaSources",
            "prvDiaForcedSources",
            "prvDiaNondetectionLimits",
            "diaObject",
            "ssSource",
            "ssObject",
            "cutoutDifference",
            "cutoutScience",
            "cutoutTemplate",
        }
    ),
    "diaSource": frozenset(
        {"diaSourceId", "diaObjectId", "ssObjectId", "ra", "dec", "decl", "reliability", "spuriousness"}
        | _TIME
        | _BAND
        | _FLUX
    ),
    "diaForcedSource": frozenset(_TIME | _BAND | _FLUX),
    "diaNondetectionLimit": frozenset(_TIME | _BAND | {"diaNoise"}),
    "diaObject": frozenset({"diaObjectId"}),
    "ssSource": frozenset({"ssObjectId", "designation", "ephOffset"}),
    "ssObject": frozenset({"ssObjectId"}),
}


# The same for ZTF (schemas 1.8 to 4.02): what the normalizer, the history, the solar-system association
# and the cutouts read. A ZTF alert's ~100 fields a row and its other records are passed over.
_ZTF_ROW = {"candid", "jd", "fid", "ra", "dec", "magpsf", "sigmapsf", "isdiffpos", "diffmaglim"}
ZTF_FIELDS: dict[str, frozenset[str]] = {
    "alert": frozenset(
        {
            "candid",
            "objectId",
            "schemavsn",
            "candidate",
            "prv_candidates",
            "fp_hists",
            "cutoutScience",
            "cutoutTemplate",
            "cutoutDifference",
        }
    ),
    "candidate": frozenset(_ZTF_ROW | {"drb", "rb", "ssdistnr", "ssmagnr", "ssnamenr"}),
    "prv_candidate": frozenset(_ZTF_ROW | {"forcediffimflux", "forcediffimfluxunc", "magzpsci"}),
    "fp_hist": frozenset({"jd", "fid", "forcediffimflux", "forcediffimfluxunc", "magzpsci"}),
    "cutout": frozenset({"fileName", "stampData"}),
}


class Projection(Protocol):
    def read(self, data: bytes, offset: int = 0) -> Record:
        """The kept fields of the one record ``data[offset:]`` holds; raises on bytes that do not fit."""

    def read_many(self, data: bytes, count: int) -> list[Record]:
        """The kept fields of each of the ``count`` records ``data`` holds back to back."""


def projection_for(definition: Any, full_name: str) -> Projection | None:
    """The compiled projection of a Rubin or ZTF writer schema (by its full name); None where the
    compiled reader is not built or the schema keeps a field it cannot read (a logical type, which the
    libraries convert)."""
    if not COMPILED:
        return None
    keep = ZTF_FIELDS if full_name.startswith("ztf") else RUBIN_FIELDS
    try:
        projection: Projection = _CompiledProjection(definition, keep)
    except Exception:  # a schema it cannot project (a logical type kept; a shape it does not know)
        return None
    return projection


__all__ = ["COMPILED", "RUBIN_FIELDS", "ZTF_FIELDS", "Projection", "projection_for"]
