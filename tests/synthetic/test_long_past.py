"""Realistic nights: the deep and wide histories measured on the real samples, in the surveys' formats."""

from __future__ import annotations

import statistics

import pytest

from starling.alert.decoder import AlertDecoder
from starling.synthetic.generator import SyntheticConfig, SyntheticNight


def _night(history: str, alerts: int = 120) -> dict[str, list[tuple[int, int, int]]]:
    """Per survey: each alert's message size, earlier detections and forced points."""
    decoder = AlertDecoder()
    found: dict[str, list[tuple[int, int, int]]] = {"ztf": [], "rubin": []}
    config = SyntheticConfig.model_validate({"alerts": alerts, "history": history, "seed": 3})
    for origin, payload in SyntheticNight(config):
        [alert] = decoder.decode(payload, origin)
        history_of = alert.history
        found[alert.survey].append((len(payload), len(history_of.detections) - 1, len(history_of.forced)))
    return found


def test_a_deep_night_carries_the_histories_of_rubins_deep_fields() -> None:
    night = _night("deep")
    rubin, ztf = night["rubin"], night["ztf"]
    # LSSTCam's deep-field alerts: 303-376 earlier diaSources, 395-777 forced sources, 250-300 kB.
    assert all(300 <= earlier <= 400 for _, earlier, _ in rubin)
    assert all(390 <= forced <= 780 for _, _, forced in rubin)
    assert statistics.mean(size for size, _, _ in rubin) > 150_000
    # ZTF 4.x: 10-65 prv_candidates (detections among them) and 10-21 fp_hists.
    assert all(10 <= earlier <= 80 for _, earlier, _ in ztf)
    assert all(10 <= forced <= 21 for _, _, forced in ztf)


def test_a_wide_night_has_young_objects_and_a_short_night_is_as_before() -> None:
    wide = _night("wide")
    assert statistics.median(earlier for _, earlier, _ in wide["rubin"]) < 20
    assert max(forced for _, _, forced in wide["rubin"]) <= 3
    short = _night("short")
    assert all(forced == 0 for survey in short.values() for _, _, forced in survey)
    assert statistics.median(earlier for _, earlier, _ in short["rubin"]) < 10


def test_every_detection_of_a_deep_night_has_an_id_of_its_own() -> None:
    decoder = AlertDecoder()
    config = SyntheticConfig.model_validate(
        {"alerts": 60, "history": "deep", "surveys": ["rubin"], "seed": 4}
    )
    ids: dict[int, float] = {}
    for origin, payload in SyntheticNight(config):
        [alert] = decoder.decode(payload, origin)
        for detection in alert.history.detections:
            # The same detection in two alerts of one object is the same epoch; never two epochs on one id.
            assert ids.setdefault(detection.detection_id, detection.mjd) == pytest.approx(detection.mjd)
