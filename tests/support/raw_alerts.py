"""What real alert files hold, read straight from the raw Avro with fastavro, not through Starling.

The independent account the store is checked against: for each object, its alerts, its detections (id,
time, band and the survey's own measurement), its upper limits and its forced photometry (time, band).
The surveys' rules, as their schemas document them:

- ZTF (an Avro container file per alert; the nightly archives are tar files of them): the ``candidate``
  and the ``prv_candidates`` rows with a ``candid`` and a ``magpsf`` are detections, the other
  ``prv_candidates`` rows upper limits (``diffmaglim``), the ``fp_hists`` rows forced photometry
  (``forcediffimflux``, -99999 where there is none). Times are JD, bands ``fid`` 1, 2, 3 = g, r, i.
- Rubin (the Confluent wire format: byte 0, a 4-byte schema id = major*100+minor, schemaless Avro): the
  ``diaSource`` and ``prvDiaSources`` are detections (``psfFlux``, nJy), ``prvDiaForcedSources`` forced
  photometry, ``prvDiaNondetectionLimits`` (schemas before 9.0) upper limits. The object is the
  ``diaObject``'s; a solar-system source (``diaObjectId`` 0 or null) belongs to its ``ssObjectId``.
"""

from __future__ import annotations

import io
import math
import tarfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from lsst.alert.packet import Schema, get_schema_path

ZTF_FID = {1: "g", 2: "r", 3: "i"}
JD_MJD = 2400000.5
FORCED_MISSING = -99999.0


def epoch(mjd: float, band: str) -> tuple[float, str]:
    """A time and band as the key of an upper limit or forced point (to a microday, ~0.1 s)."""
    return (round(mjd, 6), band)


@dataclass
class RawObject:
    """One object as its alerts' raw records tell it. ``detections``: id -> (MJD, band, the measurement:
    ZTF magpsf, Rubin psfFlux); ``upper_limits``: epoch -> limiting mag (ZTF) or noise (Rubin);
    ``forced``: epoch -> the forced flux as sent (ZTF counts, -99999 for none; Rubin nJy)."""

    alerts: set[int] = field(default_factory=set)
    detections: dict[int, tuple[float, str, float | None]] = field(default_factory=dict)
    upper_limits: dict[tuple[float, str], float | None] = field(default_factory=dict)
    forced: dict[tuple[float, str], float | None] = field(default_factory=dict)
    forced_rows: int = 0  # rows over all its alerts, repeats included


def _containers(folder: Path) -> Iterator[bytes]:
    for path in sorted(folder.rglob("*")):
        if path.name.endswith(".avro"):
            yield path.read_bytes()
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path, "r:gz") as archive:
                for member in archive.getmembers():
                    handle = archive.extractfile(member) if member.isfile() else None
                    if handle is not None and member.name.endswith(".avro"):
                        yield handle.read()


def raw_records(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(survey, record) for every alert file under ``folder``."""
    schemas: dict[int, Any] = {}
    for payload in _containers(folder):
        if payload[:4] == b"Obj\x01":
            for record in fastavro.reader(io.BytesIO(payload)):
                assert isinstance(record, dict)
                yield "ztf", record
            continue
        assert payload[:1] == b"\x00", "neither a container file nor the wire format"
        schema_id = int.from_bytes(payload[1:5], "big")
        if schema_id not in schemas:
            major, minor = divmod(schema_id, 100)
            path = Path(get_schema_path(major, minor)) / f"lsst.v{major}_{minor}.alert.avsc"
            schemas[schema_id] = fastavro.parse_schema(Schema.from_file(str(path)).definition)
        record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schemas[schema_id])
        assert isinstance(record, dict)
        yield "rubin", record


def _ztf(objects: dict[tuple[str, str], RawObject], record: dict[str, Any]) -> None:
    found = objects["ztf", record["objectId"]]
    found.alerts.add(record["candid"])
    for row in [record["candidate"], *(record.get("prv_candidates") or ())]:
        mjd, band = row["jd"] - JD_MJD, ZTF_FID[row["fid"]]
        if row.get("candid") is not None and row.get("magpsf") is not None:
            found.detections[row["candid"]] = (mjd, band, row["magpsf"])
        else:
            found.upper_limits[epoch(mjd, band)] = row.get("diffmaglim")
    for row in record.get("fp_hists") or ():
        found.forced[epoch(row["jd"] - JD_MJD, ZTF_FID[row["fid"]])] = row.get("forcediffimflux")
        found.forced_rows += 1


def rubin_object_id(record: dict[str, Any]) -> str:
    source = record["diaSource"]
    dia_object_id = (record.get("diaObject") or {}).get("diaObjectId") or source.get("diaObjectId")
    if dia_object_id:
        return str(dia_object_id)
    ss_object_id = source.get("ssObjectId") or (record.get("ssSource") or {}).get("ssObjectId")
    assert ss_object_id, "a Rubin alert with neither a DiaObject nor an SSObject"
    return f"sso-{ss_object_id}"


def _rubin(objects: dict[tuple[str, str], RawObject], record: dict[str, Any]) -> None:
    found = objects["rubin", rubin_object_id(record)]
    found.alerts.add(record["diaSource"]["diaSourceId"])
    for row in [record["diaSource"], *(record.get("prvDiaSources") or ())]:
        found.detections[row["diaSourceId"]] = (row["midpointMjdTai"], row["band"], row["psfFlux"])
    for row in record.get("prvDiaNondetectionLimits") or ():
        found.upper_limits[epoch(row["midpointMjdTai"], row["band"])] = row.get("diaNoise")
    for row in record.get("prvDiaForcedSources") or ():
        found.forced[epoch(row["midpointMjdTai"], row["band"])] = row["psfFlux"]
        found.forced_rows += 1


def raw_objects(folder: Path) -> dict[tuple[str, str], RawObject]:
    """Every object of the alert files under ``folder``, by (survey, object id)."""
    objects: dict[tuple[str, str], RawObject] = defaultdict(RawObject)
    for survey, record in raw_records(folder):
        (_ztf if survey == "ztf" else _rubin)(objects, record)
    return dict(objects)


def same(stored: float | None, sent: float | None) -> bool:
    """A stored value is the value sent (SQLite keeps doubles exactly; NaN becomes NULL)."""
    if sent is None or (isinstance(sent, float) and math.isnan(sent)):
        return stored is None
    return stored is not None and math.isclose(stored, sent, rel_tol=1e-12, abs_tol=1e-12)
