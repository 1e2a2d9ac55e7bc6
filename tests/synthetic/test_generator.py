"""The synthetic night: its schemas are the surveys' real ones, and its alerts look like a night's."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from starling.alert.decoder import AlertDecoder
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.synthetic.ztf_schema import ztf_alert_schema


def _field_signature(fields: list[dict[str, Any]]) -> list[tuple[str, str, bool, Any]]:
    def type_name(t: Any) -> str:
        if isinstance(t, dict):
            if t["type"] == "record":  # defined inline here, referenced by name in ZTF's files
                return str(t["name"]).rsplit(".", 1)[-1]
            if t["type"] == "array":
                return f"array<{type_name(t['items'])}>"
            return json.dumps(t, sort_keys=True)
        if isinstance(t, list):
            return "|".join(type_name(x) for x in t)
        return str(t).rsplit(".", 1)[-1]

    return [(f["name"], type_name(f["type"]), "default" in f, f.get("default")) for f in fields]


def _ours(name: str) -> list[dict[str, Any]]:
    top = ztf_alert_schema()
    if name == "alert":
        return top["fields"]
    for f in top["fields"]:
        options = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for option in options:
            record = option.get("items", option) if isinstance(option, dict) else None
            if isinstance(record, dict) and record.get("name") == name:
                return record["fields"]
    raise KeyError(name)


@pytest.mark.parametrize("name", ["alert", "candidate", "prv_candidate", "fp_hist", "cutout"])
def test_ztf_schema_matches_ztfs_own_avsc(samples: Path, name: str) -> None:
    real = json.loads((samples / "ztf" / "schema-4.02" / f"{name}.avsc").read_text())
    assert real["version"] == "4.02"
    assert _field_signature(_ours(name)) == _field_signature(real["fields"])


def test_rubin_schema_used_by_the_generator_matches_the_shared_one(samples: Path) -> None:
    from lsst.alert.packet import get_schema_path

    package_dir = Path(get_schema_path(11, 0))
    for shared in sorted((samples / "rubin" / "schema" / "11.0").glob("*.avsc")):
        packaged = json.loads((package_dir / shared.name).read_text())
        assert packaged == json.loads(shared.read_text()), shared.name


def test_synthetic_alerts_decode_and_histories_grow(decoder: AlertDecoder) -> None:
    night = SyntheticNight(SyntheticConfig(alerts=1500, alerts_per_visit=100, seed=9))
    alerts = [decoder.decode(payload, origin)[0] for origin, payload in night]
    assert len(alerts) == 1500
    assert Counter(a.survey for a in alerts).keys() == {"ztf", "rubin"}
    assert {a.schema_version for a in alerts} == {"4.02", "11.0"}
    by_object: dict[tuple[str, str], list[int]] = defaultdict(list)
    for alert in alerts:
        by_object[alert.key[0], alert.object_id].append(len(alert.history.detections))
    repeated = [counts for counts in by_object.values() if len(counts) > 1]
    assert repeated, "some objects must be seen more than once"
    assert all(counts == sorted(counts) for counts in repeated)
    assert any(counts[-1] > counts[0] for counts in repeated)
    assert len({a.alert_id for a in alerts}) == len(alerts)


def test_positions_cover_each_surveys_sky(decoder: AlertDecoder) -> None:
    night = SyntheticNight(SyntheticConfig(alerts=2000, seed=1, cutouts=False))
    alerts = [decoder.decode(payload, origin)[0] for origin, payload in night]
    ztf = [a for a in alerts if a.survey == "ztf"]
    rubin = [a for a in alerts if a.survey == "rubin"]
    assert min(a.dec for a in ztf) >= -30.0
    assert max(a.dec for a in rubin) <= 30.0
    assert max(a.dec for a in ztf) > 45.0
    assert min(a.dec for a in rubin) < -45.0
    assert min(a.ra for a in alerts) < 30.0
    assert max(a.ra for a in alerts) > 330.0


def test_alerts_per_visit_sets_the_cadence() -> None:
    night = SyntheticNight(SyntheticConfig(alerts=900, alerts_per_visit=150, seed=3, cutouts=False))
    visits = Counter(origin.split(":")[2] for origin, _ in night)
    assert max(visits.values()) <= 150
    assert sum(visits.values()) == 900
    assert len(visits) >= 6


def test_cutouts_are_real_sized(decoder: AlertDecoder) -> None:
    night = SyntheticNight(SyntheticConfig(alerts=40, alerts_per_visit=10, seed=2))
    messages = list(night)
    alerts = [decoder.decode(payload, origin)[0] for origin, payload in messages]
    ztf = next(a for a in alerts if a.survey == "ztf")
    rubin = next(a for a in alerts if a.survey == "rubin")
    assert ztf.cutouts["science"].to_array().shape == (63, 63)
    assert rubin.cutouts["difference"].to_array().shape == (75, 75)
    sizes = {a.survey: len(payload) for a, (_, payload) in zip(alerts, messages, strict=True)}
    assert 40_000 < sizes["ztf"] < 120_000
    assert 60_000 < sizes["rubin"] < 140_000
