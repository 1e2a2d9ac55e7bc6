"""The example plugins tested as a plugin author would: with ``starling.testing``, no Kafka, no files."""

from __future__ import annotations

import pytest

from starling.core.spec import ComponentSpec
from starling.errors import ConfigError
from starling.testing import run_components, synthetic_messages


def test_galactic_annotates_every_alert_with_coordinates_in_range() -> None:
    result = run_components([ComponentSpec(use="example-galactic")], synthetic_messages(300))
    assert len(result.alerts) == 300
    assert result.dead_letters == {}
    for alert in result.alerts:
        written = alert.annotations["example-galactic"]
        assert 0.0 <= written["l_deg"] < 360.0
        assert -90.0 <= written["b_deg"] <= 90.0


def test_a_filter_on_the_annotation_matches_exactly_the_high_latitude_alerts() -> None:
    components = [
        ComponentSpec(use="example-galactic"),
        ComponentSpec(use="adql", name="high", config={"expression": "ABS(example_galactic.b_deg) > 30"}),
    ]
    result = run_components(components, synthetic_messages(400))
    expected = {a.alert_id for a in result.alerts if abs(a.annotations["example-galactic"]["b_deg"]) > 30}
    assert 0 < len(expected) < 400
    assert {a.alert_id for a in result.matches["high"]} == expected


def test_rising_passes_only_alerts_that_brighten_in_their_band() -> None:
    spec = ComponentSpec(
        use="example-rising",
        name="rising",
        config={"min_rate_mag_per_day": 0.02, "days": 30, "min_points": 2},
    )
    result = run_components([spec], synthetic_messages(600))
    assert 0 < len(result.matches["rising"]) < 600
    for alert in result.matches["rising"]:  # checked independently: least squares by hand
        band = [
            (d.mjd, d.mag)
            for d in alert.history.detections
            if d.band == alert.band and d.mag is not None and alert.mjd - 30 <= d.mjd <= alert.mjd
        ]
        assert len(band) >= 2
        t0 = band[0][0]
        mean_t = sum(t - t0 for t, _ in band) / len(band)
        mean_m = sum(m for _, m in band) / len(band)
        covariance = sum((t - t0 - mean_t) * (m - mean_m) for t, m in band)
        variance = sum((t - t0 - mean_t) ** 2 for t, _ in band)
        assert variance > 0
        assert -covariance / variance >= 0.02 - 1e-9


def test_a_bad_config_is_refused_with_the_field_named() -> None:
    spec = ComponentSpec(use="example-rising", config={"min_points": 1})
    with pytest.raises(ConfigError, match="min_points"):
        run_components([spec], synthetic_messages(10))
