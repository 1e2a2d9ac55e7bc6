"""Every real ZTF alert in ../shared/data/ztf/alerts decodes to the values the file holds."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import numpy as np
import pytest

from starling.alert.decoder import AlertDecoder
from starling.alert.photometry import flux_njy_to_mag

# What each file holds, read off the files (objectId, candid, schema, ra, dec, jd, magpsf, band,
# rows of prv_candidates that are detections / upper limits / forced photometry).
ZTF_SAMPLES = {
    "1628364324215010017.avro": (
        "ZTF18abmmoot",
        1628364324215010017,
        "3.3",
        304.644564,
        33.9876222,
        2459382.8643287,
        18.976173400878906,
        "r",
        10,
        14,
        0,
    ),
    "1661382530015060001.avro": (
        "ZTF18aaxjdyr",
        1661382530015060001,
        "3.5",
        296.8679389,
        24.08881,
        2459415.8825347,
        15.553853034973145,
        "r",
        0,
        0,
        23,
    ),
    "2019_01_10_739260766315010006.avro": (
        "ZTF17aaacxxf",
        739260766315010006,
        "3.2",
        75.2007803,
        35.3613954,
        2458493.7607639,
        15.371133804321289,
        "r",
        22,
        6,
        0,
    ),
    "472263571115115000.avro": (
        "ZTF17aaajnnn",
        472263571115115000,
        "3.3",
        179.6402013,
        52.0297203,
        2458226.7635764,
        18.36185646057129,
        "r",
        0,
        11,
        0,
    ),
    "template_schema_ZTF_3p3.avro": (
        "ZTF19abvhduf",
        1048197683315015009,
        "3.3",
        97.1396811,
        56.0751695,
        2458802.6976852,
        17.9606876373291,
        "g",
        20,
        0,
        0,
    ),
}


def test_every_ztf_sample_is_covered(samples: Path) -> None:
    assert sorted(p.name for p in (samples / "ztf" / "alerts").glob("*.avro")) == sorted(ZTF_SAMPLES)


@pytest.mark.parametrize("name", sorted(ZTF_SAMPLES))
def test_ztf_sample_fields(samples: Path, decoder: AlertDecoder, name: str) -> None:
    object_id, candid, version, ra, dec, jd, mag, band, n_prv_det, n_limits, n_forced = ZTF_SAMPLES[name]
    [alert] = decoder.decode((samples / "ztf" / "alerts" / name).read_bytes(), name)
    assert alert.survey == "ztf"
    assert alert.object_id == object_id
    assert alert.alert_id == candid
    assert alert.schema_version == version
    assert alert.ra == pytest.approx(ra, abs=1e-9)
    assert alert.dec == pytest.approx(dec, abs=1e-9)
    assert alert.mjd == pytest.approx(jd - 2400000.5, abs=1e-9)
    assert alert.mag == pytest.approx(mag)
    assert alert.band == band
    history = alert.history
    assert len(history.detections) == n_prv_det + 1  # the triggering detection is in the light curve
    assert len(history.upper_limits) == n_limits
    assert len(history.forced) == n_forced
    assert [d.mjd for d in history.detections] == sorted(d.mjd for d in history.detections)
    assert alert.alert_id in {d.detection_id for d in history.detections}


@pytest.mark.parametrize("name", sorted(ZTF_SAMPLES))
def test_ztf_sample_against_plain_fastavro(samples: Path, decoder: AlertDecoder, name: str) -> None:
    """The cached-schema container path gives exactly the record plain fastavro gives."""
    payload = (samples / "ztf" / "alerts" / name).read_bytes()
    [reference] = list(fastavro.reader(io.BytesIO(payload)))
    [alert] = decoder.decode(payload, name)
    assert alert.record == reference
    candidate = reference["candidate"]
    expected_reliability = candidate.get("drb") if candidate.get("drb") is not None else candidate["rb"]
    assert alert.reliability == expected_reliability
    # ZTF gives |difference flux| as a magnitude and its sign in isdiffpos.
    assert alert.flux is not None
    assert (alert.flux > 0) == (candidate["isdiffpos"] in ("t", "1"))
    assert flux_njy_to_mag(abs(alert.flux)) == pytest.approx(candidate["magpsf"], abs=1e-9)
    upper_limit_jds = sorted(p["jd"] for p in reference["prv_candidates"] or [] if p.get("candid", 0) is None)
    assert [u.mjd + 2400000.5 for u in alert.history.upper_limits] == pytest.approx(upper_limit_jds)
    limits = sorted(
        (p["jd"], p["diffmaglim"]) for p in reference["prv_candidates"] or [] if p.get("candid", 0) is None
    )
    assert [u.limiting_mag for u in alert.history.upper_limits] == [lim for _, lim in limits]


@pytest.mark.parametrize("name", sorted(ZTF_SAMPLES))
def test_ztf_cutouts_decode_to_63x63(samples: Path, decoder: AlertDecoder, name: str) -> None:
    [alert] = decoder.decode((samples / "ztf" / "alerts" / name).read_bytes(), name)
    assert set(alert.cutouts) == {"science", "template", "difference"}
    for cutout in alert.cutouts.values():
        assert cutout.data[:2] == b"\x1f\x8b"  # kept gzipped until asked
        pixels = cutout.to_array()
        assert pixels.shape == (63, 63)
        assert pixels.dtype == np.float32
        assert np.isfinite(pixels).mean() > 0.5  # masked pixels may be NaN; most are not


def test_forced_photometry_of_the_35_test_alert_is_on_the_njy_scale(
    samples: Path, decoder: AlertDecoder
) -> None:
    payload = (samples / "ztf" / "alerts" / "1661382530015060001.avro").read_bytes()
    [alert] = decoder.decode(payload, "fp")
    first_row = min(alert.record["prv_candidates"], key=lambda row: row["jd"])
    point = alert.history.forced[0]
    # flux [nJy] = forcediffimflux [DN] * 10**((31.4 - magzpsci) / 2.5)
    expected = first_row["forcediffimflux"] * 10 ** ((31.4 - first_row["magzpsci"]) / 2.5)
    assert point.flux == pytest.approx(expected)
    assert point.band == {1: "g", 2: "r", 3: "i"}[first_row["fid"]]
