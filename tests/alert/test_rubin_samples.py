"""Every Rubin sample (schema 3.0 to 11.0 and the ELAsTiCC simulation) decodes; values match alert.json."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starling.alert.decoder import AlertDecoder, encode_wire
from starling.alert.photometry import finite, flux_err_to_mag_err, flux_njy_to_mag, uncertainty
from starling.alert.rubin import build_rubin_history
from starling.alert.schemas import PackagedRubinSchemas
from starling.store.open import open_store
from tests.support.helpers import run_replay

VERSIONS = [
    "3.0",
    "4.0",
    "5.0",
    "6.0",
    "6.1",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "8.0",
    "9.0",
    "10.0",
    "11.0",
]


def _first(row: dict, *names: str) -> object:
    return next(row[n] for n in names if row.get(n) is not None)


def test_every_rubin_version_is_covered(samples: Path) -> None:
    found = sorted(p.name for p in (samples / "rubin" / "samples").iterdir() if p.name[0].isdigit())
    assert sorted(found) == sorted(VERSIONS)


@pytest.mark.parametrize("version", VERSIONS)
def test_rubin_container_sample_matches_its_json(samples: Path, decoder: AlertDecoder, version: str) -> None:
    folder = samples / "rubin" / "samples" / version
    [alert] = decoder.decode((folder / "fakeAlert.avro").read_bytes(), version)
    truth = json.loads((folder / "alert.json").read_text())
    source = truth["diaSource"]
    assert alert.survey == "rubin"
    assert alert.schema_version == version
    assert alert.alert_id == _first(truth, "diaSourceId", "alertId")
    assert alert.object_id == str(truth["diaObject"]["diaObjectId"])
    assert alert.ra == pytest.approx(source["ra"])
    assert alert.dec == pytest.approx(_first(source, "dec", "decl"))
    assert alert.mjd == pytest.approx(_first(source, "midpointMjdTai", "midPointTai"))
    assert alert.band == _first(source, "band", "filterName")
    assert alert.flux == pytest.approx(_first(source, "psfFlux", "psFlux"))
    assert alert.flux_err == pytest.approx(_first(source, "psfFluxErr", "psFluxErr"))
    assert alert.mag == pytest.approx(31.4 - 2.5 * math.log10(alert.flux))
    assert len(alert.history.detections) == 1 + len(truth.get("prvDiaSources") or [])
    assert alert.cutouts == {}  # the samples carry no cutouts


@pytest.mark.parametrize("version", [v for v in VERSIONS if int(v.split(".")[0]) >= 7])
def test_rubin_wire_format_decodes_like_the_container(
    samples: Path, decoder: AlertDecoder, packaged_schemas: PackagedRubinSchemas, version: str
) -> None:
    """Re-frame each v7+ sample the way Rubin puts it on Kafka: 0x00, schema id, schemaless Avro."""
    payload = (samples / "rubin" / "samples" / version / "fakeAlert.avro").read_bytes()
    [record] = list(fastavro.reader(io.BytesIO(payload)))
    major, minor = (int(part) for part in version.split("."))
    schema_id = major * 100 + minor
    wire = encode_wire(schema_id, packaged_schemas.get(schema_id).parsed, record)
    assert wire[0] == 0
    assert int.from_bytes(wire[1:5], "big") == schema_id
    [from_wire] = decoder.decode(wire, "wire")
    [from_container] = decoder.decode(payload, "container")
    assert from_wire.summary() == from_container.summary()
    assert from_wire.record == from_container.record


def test_elasticc_simulation_decodes(samples: Path, decoder: AlertDecoder) -> None:
    [path] = (samples / "rubin" / "samples" / "elasticc-sim").glob("*.avro")
    [alert] = decoder.decode(path.read_bytes(), path.name)
    # The file name says alert_mjd60673.2244_obj1198_src2396011.
    assert alert.object_id == "1198"
    assert alert.mjd == pytest.approx(60673.2244)
    assert alert.band == "g"
    assert alert.flux == pytest.approx(98.14994812011719)
    assert 2396011 in {d.detection_id for d in alert.history.detections}
    assert len(alert.history.detections) == 7


def test_real_solar_system_alerts_land_on_their_own_objects_never_a_zero_id(
    samples: Path, tmp_path: Path
) -> None:
    """Real LSSTCam solar-system alerts carry diaObjectId 0 and their own ssObjectId: each is its
    asteroid's object (in the alerts, the store and the Kafka key), not one object '0' for all."""
    folder = samples / "realworld" / "rubin"
    decoder = AlertDecoder()
    alerts = [a for p in sorted(folder.glob("*.avro")) for a in decoder.decode(p.read_bytes(), p.name)]
    moving = [a for a in alerts if a.record["diaSource"].get("ssObjectId")]
    assert len(moving) >= 2
    assert all(a.record["diaSource"]["diaObjectId"] in (0, None) for a in moving)
    assert [a.object_id for a in moving] == [f"sso-{a.record['diaSource']['ssObjectId']}" for a in moving]
    assert len({a.object_id for a in moving}) == len({a.record["diaSource"]["ssObjectId"] for a in moving})
    assert "0" not in {a.object_id for a in alerts}
    summary = run_replay([folder], tmp_path)
    assert summary.dead_letters == {}
    store = open_store(tmp_path / "starling.db")
    try:
        stored = {r["object_id"] for r in store.query("SELECT object_id FROM objects WHERE survey = 'rubin'")}
    finally:
        store.close()
    assert {a.object_id for a in moving} <= stored
    assert "0" not in stored


@settings(max_examples=500, deadline=None)
@given(
    flux=st.one_of(st.floats(), st.none(), st.integers(-(10**30), 10**30)),
    flux_err=st.one_of(st.floats(), st.none(), st.integers(-5, 10**30)),
)
def test_a_history_rows_magnitudes_are_the_photometry_modules(flux: object, flux_err: object) -> None:
    """The history builder computes a common row's magnitude inline: it must be what the photometry
    functions give, for every flux and error (sentinels, extremes, integers)."""
    row = {"diaSourceId": 1, "midpointMjdTai": 60000.0, "band": "r", "psfFlux": flux, "psfFluxErr": flux_err}
    [detection] = build_rubin_history({"diaSource": row}).detections
    expected_flux, expected_err = finite(flux), uncertainty(flux_err)
    assert (detection.flux, detection.flux_err) == (expected_flux, expected_err)
    assert detection.mag == flux_njy_to_mag(expected_flux)
    assert detection.mag_err == flux_err_to_mag_err(expected_flux, expected_err)
