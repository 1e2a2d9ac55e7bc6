"""The solar-system flag, one survey-neutral answer, on the real samples of both surveys."""

from __future__ import annotations

from pathlib import Path

import pytest

from starling.adql.language import compile_filter
from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.components.annotators.solar_system import SolarSystem, SolarSystemConfig

pytestmark = pytest.mark.samples


def _decode(path: Path) -> Alert:
    [alert] = AlertDecoder().decode(path.read_bytes(), path.name)
    return alert


def test_ztf_nearest_known_object(samples: Path) -> None:
    flag = SolarSystem(SolarSystemConfig(max_distance_arcsec=5.0), "solar_system")
    alerts = [_decode(p) for p in sorted((samples / "ztf" / "alerts").glob("*.avro"))]
    flag.annotate(alerts)
    # None of the real ZTF samples is near a known object: ssdistnr is -999 in each.
    assert [a.annotations["solar_system"]["known"] for a in alerts] == [0] * len(alerts)
    near, far = alerts[0], alerts[1]
    # The annotator reads the fields the decoder projected (what it needs), not the whole record.
    near.fields["candidate"].update(ssdistnr=2.1, ssnamenr="12345", ssmagnr=19.2)
    far.fields["candidate"].update(ssdistnr=30.0, ssnamenr="999", ssmagnr=20.0)
    flag.annotate([near, far])
    assert near.annotations["solar_system"] == {
        "known": 1,
        "distance_arcsec": 2.1,
        "name": "12345",
        "magnitude": 19.2,
    }
    assert far.annotations["solar_system"]["known"] == 0
    assert far.annotations["solar_system"]["distance_arcsec"] == 30.0


def test_rubin_association_in_every_schema(samples: Path) -> None:
    flag = SolarSystem(SolarSystemConfig(), "solar_system")
    found = {}
    for path in sorted((samples / "rubin" / "samples").glob("*/fakeAlert.avro")):
        alert = _decode(path)
        flag.annotate([alert])
        found[path.parent.name] = alert.annotations["solar_system"]
    # Schemas 3.0 to 7.x carry the associated ssObject (id 5364546 in the samples); 8.0 on do not here.
    for version, flagged in found.items():
        if float(version) < 8:
            assert flagged == {"known": 1, "distance_arcsec": None, "name": "5364546", "magnitude": None}
        else:
            assert flagged["known"] == 0
    # Schema 11: an ssSource gives the designation and the offset from the ephemeris.
    alert = _decode(samples / "rubin" / "samples" / "11.0" / "fakeAlert.avro")
    alert.fields["ssSource"] = {"ssObjectId": 42, "designation": "2024 AB12", "ephOffset": 0.8}
    flag.annotate([alert])
    assert alert.annotations["solar_system"] == {
        "known": 1,
        "distance_arcsec": 0.8,
        "name": "2024 AB12",
        "magnitude": None,
    }


def test_filters_can_use_the_flag(samples: Path) -> None:
    alerts = [_decode(p) for p in sorted((samples / "rubin" / "samples").glob("*/fakeAlert.avro"))]
    SolarSystem(SolarSystemConfig(), "solar-system").annotate(alerts)
    kept = compile_filter("solar_system.known = 0").evaluate_alerts(alerts)
    assert sum(kept) == sum(1 for a in alerts if a.annotations["solar-system"]["known"] == 0) > 0
