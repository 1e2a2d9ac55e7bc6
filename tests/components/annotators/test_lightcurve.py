"""Light-curve features on real ZTF histories, against values worked out by hand from the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from starling.adql.language import compile_filter
from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.components.annotators.lightcurve import LightCurveConfig, LightCurveFeatures, batch_features
from tests.support.helpers import synthetic_alerts

pytestmark = pytest.mark.samples


def _alert(samples: Path, name: str) -> Alert:
    [alert] = AlertDecoder().decode((samples / "ztf" / "alerts" / name).read_bytes(), name)
    return alert


def test_one_band_history_by_hand(samples: Path) -> None:
    # 11 r-band detections, MJD 59353.45826 (19.2508 mag) to 59382.36433 (18.9762 mag), brightest 18.9681
    # at 59378.38931.
    [found] = batch_features([_alert(samples, "1628364324215010017.avro")])
    r = found["r"]
    assert set(found) == {"r"}
    assert r["n_det"] == 11
    assert r["first_mjd"] == pytest.approx(59353.45826, abs=1e-5)
    assert r["last_mjd"] == pytest.approx(59382.36433, abs=1e-5)
    assert r["span_days"] == pytest.approx(28.90606, abs=1e-5)
    assert r["peak_mag"] == pytest.approx(18.96810, abs=1e-5)
    assert r["peak_mjd"] == pytest.approx(59378.38931, abs=1e-5)
    assert r["latest_mag"] == pytest.approx(18.97617, abs=1e-5)
    # (19.25080 - 18.96810) / (59378.38931 - 59353.45826) = 0.28270 / 24.93105
    assert r["rise_rate"] == pytest.approx(0.011339, abs=1e-6)
    # (18.97617 - 18.96810) / (59382.36433 - 59378.38931) = 0.00807 / 3.97502
    assert r["decline_rate"] == pytest.approx(0.0020311, abs=1e-6)
    assert r["amplitude"] == pytest.approx((19.25080 - 18.96810) / 2, abs=1e-5)
    assert r["linear_trend"] < 0  # brightening over the month
    assert 0 <= r["beyond_1_std"] <= 1


def test_colours_between_bands_by_hand(samples: Path) -> None:
    alert = _alert(samples, "2019_01_10_739260766315010006.avro")
    [found] = batch_features([alert])
    assert {"g", "r", "colors"} <= set(found)
    # Latest g: 17.9062 at MJD 58493.2032; latest r: 15.3711 at 58493.2608.
    assert found["colors"]["g_r"] == pytest.approx(17.9062 - 15.3711, abs=2e-4)
    assert found["colors"]["g_r_dt"] == pytest.approx(58493.2608 - 58493.2032, abs=2e-4)
    assert found["g"]["n_det"] + found["r"]["n_det"] == len(alert.history.detections)
    single = _alert(samples, "1661382530015060001.avro")
    [lone] = batch_features([single])
    assert lone["r"]["n_det"] == 1
    assert lone["r"]["rise_rate"] is None  # one point: no rate, no fit
    assert "amplitude" not in lone["r"]


def test_the_batch_gives_what_each_alert_gives_alone(samples: Path) -> None:
    alerts = synthetic_alerts(300)
    together = batch_features(alerts)
    for alert, features in list(zip(alerts, together, strict=True))[:60]:
        assert batch_features([alert])[0] == features
    LightCurveFeatures(LightCurveConfig(), "lc-features").annotate(alerts)
    kept = compile_filter("lc_features.r.n_det >= 3 AND lc_features.r.rise_rate > 0.05").evaluate_alerts(
        alerts
    )
    expected = [
        (f := a.annotations["lc-features"].get("r")) is not None
        and f["n_det"] >= 3
        and f["rise_rate"] is not None
        and f["rise_rate"] > 0.05
        for a in alerts
    ]
    assert list(kept) == expected
