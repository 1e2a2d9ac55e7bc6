"""``solar-system``: is the alert a known solar-system object? One survey-neutral answer.

- ZTF: the nearest known object from the MPC catalogue, ``ssdistnr`` (arcsec, -999 when none within
  the search), ``ssnamenr`` and ``ssmagnr`` in the candidate; known when the distance is at most
  ``max_distance_arcsec``.
- Rubin: the alert's ``ssSource`` (schema 10+; its ``designation`` and ``ephOffset``, the observed
  position's offset from the ephemeris, arcsec); before 8.0 the alert's ``ssObject`` record; else a
  non-zero ``ssObjectId`` on the diaSource (the association, without a distance).

Writes ``known`` (1 or 0), ``distance_arcsec``, ``name`` and ``magnitude`` (predicted V, ZTF) under
its name, so a filter can ask ``solar_system.known = 0``. A distance or magnitude the survey marks
missing (ZTF's -999, NaN, null) is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from starling.alert.model import Alert
from starling.alert.photometry import finite, reported_mag
from starling.core.component import AnnotationField, Annotator, ComponentConfig


class SolarSystemConfig(ComponentConfig):
    max_distance_arcsec: float = Field(
        5.0, gt=0, description="ZTF: a known object at most this far is a match"
    )


def _distance(value: Any) -> float | None:
    """A distance in arcsec; None for a sentinel (ZTF's -999 when nothing is near, NaN, null)."""
    number = finite(value)
    return number if number is not None and number >= 0.0 else None


class SolarSystem(Annotator[SolarSystemConfig]):
    Config: ClassVar[type[ComponentConfig]] = SolarSystemConfig
    outputs: ClassVar[dict[str, AnnotationField]] = {
        "known": AnnotationField("int", "", "1 if a known solar-system object is at the alert's position"),
        "distance_arcsec": AnnotationField(
            "float", "arcsec", "distance to that object (ZTF; Rubin: ephemeris offset)"
        ),
        "name": AnnotationField("string", "", "its name or designation"),
        "magnitude": AnnotationField("float", "mag", "its predicted V magnitude (ZTF)"),
    }

    def annotate(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            record = alert.fields
            found = self._ztf(record) if alert.survey == "ztf" else self._rubin(record)
            alert.annotations[self.name] = found

    def _ztf(self, record: dict[str, Any]) -> dict[str, Any]:
        candidate = record.get("candidate") or {}
        distance = _distance(candidate.get("ssdistnr"))
        if distance is None:
            return {"known": 0, "distance_arcsec": None, "name": None, "magnitude": None}
        name = candidate.get("ssnamenr")
        known = distance <= self.config.max_distance_arcsec
        return {
            "known": int(known),
            "distance_arcsec": distance,
            "name": name if isinstance(name, str) and name not in ("", "null") else None,
            "magnitude": reported_mag(candidate.get("ssmagnr")),
        }

    @staticmethod
    def _rubin(record: dict[str, Any]) -> dict[str, Any]:
        source = record.get("ssSource")
        if isinstance(source, dict):
            name = source.get("designation") or (
                str(source["ssObjectId"]) if source.get("ssObjectId") else None
            )
            return {
                "known": 1,
                "distance_arcsec": _distance(source.get("ephOffset")),
                "name": name,
                "magnitude": None,
            }
        associated = record.get("ssObject")  # schemas 3.0 to 7.x carry the associated object
        if isinstance(associated, dict) and associated.get("ssObjectId"):
            return {
                "known": 1,
                "distance_arcsec": None,
                "name": str(associated["ssObjectId"]),
                "magnitude": None,
            }
        dia_source = record.get("diaSource") or {}
        object_id = dia_source.get("ssObjectId")
        if object_id:
            return {"known": 1, "distance_arcsec": None, "name": str(object_id), "magnitude": None}
        return {"known": 0, "distance_arcsec": None, "name": None, "magnitude": None}
