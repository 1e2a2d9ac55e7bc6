"""A filter's match as a VOEvent 2.0 packet (IVOA REC 2.0), valid against the VOEvent 2.0 schema.

One packet per match: Who (Starling as author), What (the alert's measurements as Params, the
filter's name and expression, annotations as a Group), WhereWhen (ICRS position and time), How,
Why (the filter that matched, as the inference). The IVORN is unique per filter and alert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from starling.alert.export import annotations_seen_by, filter_owner
from starling.alert.model import Alert

NAMESPACE = "http://www.ivoa.net/xml/VOEvent/v2.0"
AUTHORITY = "ivo://starling.broker"
# Approximate astrometric uncertainty of a difference-image position (degrees): 0.1 arcsec.
_POSITION_ERROR_DEG = 0.1 / 3600

_PARAMS: tuple[tuple[str, str, str, str], ...] = (
    # attribute, unit, UCD, dataType
    ("alert_id", "", "meta.id", "string"),
    ("object_id", "", "meta.id;src", "string"),
    ("survey", "", "meta.id;instr.obsty", "string"),
    ("band", "", "instr.filter", "string"),
    ("mag", "mag", "phot.mag", "float"),
    ("mag_err", "mag", "stat.error;phot.mag", "float"),
    ("flux", "nJy", "phot.flux.density", "float"),
    ("flux_err", "nJy", "stat.error;phot.flux.density", "float"),
    ("reliability", "", "stat.probability", "float"),
    ("mjd", "d", "time.epoch", "float"),
)


def ivorn(filter_name: str, alert: Alert) -> str:
    return f"{AUTHORITY}/filters/{filter_name}#{alert.survey}-{alert.alert_id}"


_MJD_ZERO = datetime(1858, 11, 17)


def _iso(mjd: float) -> str:
    """ISO time of an MJD (UTC, as the coordinate system says; no zone designator in VOEvent's ISOTime).

    Plain calendar arithmetic: leap seconds do not matter at this precision, and a test alert with a
    placeholder time (MJD 0) still gives a valid packet."""
    try:
        return (_MJD_ZERO + timedelta(days=mjd)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    except (OverflowError, ValueError):
        return _MJD_ZERO.strftime("%Y-%m-%dT%H:%M:%S")


def voevent_xml(alert: Alert, filter_name: str, expression: str, role: str = "observation") -> bytes:
    ElementTree.register_namespace("voe", NAMESPACE)
    root = ElementTree.Element(
        f"{{{NAMESPACE}}}VOEvent", {"ivorn": ivorn(filter_name, alert), "role": role, "version": "2.0"}
    )
    who = ElementTree.SubElement(root, "Who")
    ElementTree.SubElement(who, "AuthorIVORN").text = f"{AUTHORITY}/author"
    ElementTree.SubElement(who, "Date").text = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    author = ElementTree.SubElement(who, "Author")
    ElementTree.SubElement(author, "shortName").text = "Starling"
    ElementTree.SubElement(author, "contactName").text = "Starling alert broker"

    what = ElementTree.SubElement(root, "What")
    for attribute, unit, ucd, data_type in _PARAMS:
        value = getattr(alert, attribute)
        if value is None:
            continue
        attributes = {"name": attribute, "value": str(value), "ucd": ucd, "dataType": data_type}
        if unit:
            attributes["unit"] = unit
        ElementTree.SubElement(what, "Param", attributes)
    seen = annotations_seen_by(alert.annotations, filter_owner(filter_name))  # no other user's hits
    for annotator, values in sorted(seen.items()):
        group = ElementTree.SubElement(what, "Group", {"name": annotator, "type": "annotation"})
        for key, value in sorted(values.items()):
            if value is None:
                continue
            text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            ElementTree.SubElement(group, "Param", {"name": key, "value": text})

    where_when = ElementTree.SubElement(root, "WhereWhen")
    location = ElementTree.SubElement(where_when, "ObsDataLocation")
    ElementTree.SubElement(location, "ObservatoryLocation", {"id": "GEOSURFACE"})
    observation = ElementTree.SubElement(location, "ObservationLocation")
    ElementTree.SubElement(observation, "AstroCoordSystem", {"id": "UTC-ICRS-TOPO"})
    coords = ElementTree.SubElement(observation, "AstroCoords", {"coord_system_id": "UTC-ICRS-TOPO"})
    time = ElementTree.SubElement(coords, "Time", {"unit": "s"})
    instant = ElementTree.SubElement(time, "TimeInstant")
    ElementTree.SubElement(instant, "ISOTime").text = _iso(alert.mjd)
    position = ElementTree.SubElement(coords, "Position2D", {"unit": "deg"})
    ElementTree.SubElement(position, "Name1").text = "RA"
    ElementTree.SubElement(position, "Name2").text = "Dec"
    value2 = ElementTree.SubElement(position, "Value2")
    ElementTree.SubElement(value2, "C1").text = repr(float(alert.ra))
    ElementTree.SubElement(value2, "C2").text = repr(float(alert.dec))
    ElementTree.SubElement(position, "Error2Radius").text = repr(_POSITION_ERROR_DEG)

    how = ElementTree.SubElement(root, "How")
    ElementTree.SubElement(
        how, "Description"
    ).text = f"{alert.survey.upper()} difference-image alert {alert.alert_id}, schema {alert.schema_version}"
    why = ElementTree.SubElement(root, "Why")
    inference = ElementTree.SubElement(why, "Inference", {"probability": "1.0"})
    ElementTree.SubElement(inference, "Name").text = alert.object_id
    ElementTree.SubElement(inference, "Concept").text = "transient"
    ElementTree.SubElement(
        why, "Description"
    ).text = f"matched the Starling filter {filter_name}: {expression}"
    return bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))


def describe(packet: bytes) -> dict[str, Any]:
    """The IVORN and position of a packet (for logs and tests)."""
    root = ElementTree.fromstring(packet)
    c1 = root.find(".//Value2/C1")
    c2 = root.find(".//Value2/C2")
    return {
        "ivorn": root.get("ivorn"),
        "ra": float(c1.text or "nan") if c1 is not None else None,
        "dec": float(c2.text or "nan") if c2 is not None else None,
    }
