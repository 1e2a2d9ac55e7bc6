"""The real samples as the example pipeline annotates them, in a store, and a condition for every
construct of the filter language: what the tests that hold a filter to its TAP query share.

The annotators are those of ``examples/pipelines/annotated.toml`` in the embedded runtime, with what they
need to say something about these alerts: the watchlist ``favourites`` gets targets at some of the alerts,
and a map (``watchmaps``: ``gw``) and a catalogue (``xmatch``: ``gaia``, built here) are added around some
of them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from mocpy import MOC

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.components.annotators.catalog_index import CatalogIndex
from starling.core.component import RawMessage
from starling.core.spec import ComponentSpec
from starling.store.open import open_store
from starling.testing import run_components
from tests.support.paths import REPO

# {ra} and {dec} are a position among the alerts; {box} a polygon 20 degrees about it.
CONDITIONS = [
    # comparisons
    "band = 'r'",
    "band <> 'r'",
    "band != 'g'",
    "mag < 19.5",
    "mag <= 19.7",
    "mag > 20",
    "mag >= 19.7",
    "1 = ndethist",
    # arithmetic
    "mag + mag_err > 19.8",
    "mag - 2 * mag_err < 19",
    "flux / flux_err > 10",
    "ndethist / 2 > 1.2",  # real division, whole numbers or not
    "flux / (ndethist - 1) > 10000",  # x / 0 is NULL
    "-mag < -19.5",
    "-(ndethist) <= -3",
    "mag * 2 - 1 > 38",
    "ndethist * 0.1 > 0.3",  # a double (0.30000000000000004), not an exact decimal
    "alert_id % 7 = 3",
    "MOD(ndethist, 2) = 1",
    "mjd % 0.001 < 0.0005",
    "mag % 0.5 < 0.2",
    # logic
    "mag < 19 AND band = 'r'",
    "mag < 19 OR band = 'g'",
    "NOT mag < 19.5",
    "NOT (band = 'g' OR mag > 20)",
    "(mag < 19 OR mag > 21) AND NOT band = 'i'",
    # BETWEEN, IN
    "mag BETWEEN 18 AND 19.5",
    "mag NOT BETWEEN 18 AND 19.5",
    "ndethist BETWEEN 2 AND 5",
    "object_id BETWEEN '1' AND 'ZTF18z'",
    "band IN ('g', 'i')",
    "band NOT IN ('g', 'i')",
    "ndethist IN (1, 3, 5)",
    "band IN ('g', NULL)",
    "band NOT IN ('g', NULL) OR mag < 19",  # NOT IN a list with NULL is never true
    # LIKE: case-sensitive, % and _, ESCAPE, and no escape character without one
    "object_id LIKE 'ZTF%'",
    "object_id NOT LIKE 'ZTF%'",
    "object_id LIKE 'ZTF__a%'",
    "object_id LIKE 'ztf%' OR survey = 'rubin'",
    "band LIKE 'R' OR band = 'g'",
    "object_id ILIKE 'ztf%'",
    "object_id NOT ILIKE 'ZTF%'",
    "(object_id || '_x') LIKE '%!_x' ESCAPE '!' AND band = 'r'",
    "(object_id || '\\a') LIKE '%\\_' AND band = 'r'",
    # NULL
    "mag IS NULL OR band = 'g'",
    "mag IS NOT NULL AND mag_err > 0.05",
    "mag = NULL OR band = 'g'",
    "NULL IS NULL AND band = 'g'",
    "-NULL IS NULL AND band = 'g'",
    "(band || NULL) IS NULL AND band = 'g'",
    "NULL LIKE 'r%' OR band = 'g'",
    "mag + NULL > 1 OR band = 'g'",
    "COALESCE(mag, 0) > 19",
    "COALESCE(lc_features.g.peak_mag, 99) < 99",
    "history_summary.delta_mag_same_band IS NULL",
    "lc_features.r.rise_rate IS NOT NULL OR band = 'g'",
    # strings
    "object_id < 'ZTF'",  # digits < capitals < 'sso-...' in the order of characters
    "object_id > 'ZTF18abc'",
    "survey || band = 'ztfr'",
    "LOWER(object_id) LIKE 'ztf%'",
    "UPPER(band) = 'R'",
    "LOWER(survey) = 'ztf' AND UPPER(band) IN ('G', 'I')",
    "schema_version = '4.02'",
    "COALESCE(solar_system.name, 'none') <> 'none' OR band = 'g'",
    # history
    "ndethist >= 3",
    "nnondethist > 0",
    "nforcedhist >= 10 OR band = 'g'",
    # the store's history counts against what the alert carried, as history-summary counted it
    "ndethist = history_summary.n_detections AND band <> 'g'",
    "nnondethist = history_summary.n_upper_limits AND band <> 'i'",
    "nforcedhist = history_summary.n_forced AND band = 'i'",  # a Rubin alert's own visit included
    "first_mjd = history_summary.first_mjd AND band = 'r'",
    "first_mjd < mjd - 1",
    "age_days > 10",
    "age_days = 0",
    # annotations (aliases, a delimited annotator, a '*' of each kind)
    "history_summary.peak_mag < 19",
    '"history-summary".n_detections >= 2',
    "history_summary.span_days > 1",
    "lc_features.r.n_det >= 2",
    '"lc-features".r.peak_mag < 19.5',
    "lc_features.g.rise_rate > 0 OR band = 'i'",
    "lc_features.colors.g_r > 0 OR band = 'i'",
    "solar_system.known = 1 OR band = 'g'",
    "watchlists.favourites.count >= 1",
    "watchlists.favourites.dist_arcsec < 1",
    "watchlists.favourites.target LIKE 'near-1%'",
    "watchmaps.gw.inside = 1",
    "xmatch.gaia.count = 0",
    "xmatch.gaia.dist_arcsec < 0.5",
    "xmatch.gaia.id LIKE 'Gaia-1%'",
    "xmatch.gaia.phot_g_mean_mag < 18",
    # the functions TAP serves too (RAND is left out: random values, which no two generators share)
    "ABS(dec) < 30",
    "CEILING(mag) = 20",
    "FLOOR(mag) = 19",
    "ROUND(mag) = 20",
    "ROUND(mag, 1) >= 19.8",
    "ROUND(flux, -3) > 30000",
    "TRUNCATE(mag) = 19",
    "TRUNCATE(mag, 1) < 19.5",
    "SQRT(flux) > 100",  # a negative flux: NULL, not an error
    "POWER(mag, 2) > 380",
    "POWER(flux, 0.5) > 100",
    "POWER(10, -0.4 * mag) > 1e-8",
    "EXP(mag - 20) > 0.5",
    "EXP(flux / 1000) > 10",  # past a double: NULL, not an infinity
    "LOG(mag) > 2.98",
    "LOG(flux) > 10",
    "LOG10(flux) > 4.5",
    "LOG(2, flux_err) > 12",
    "mag > PI() * 6.3",
    "DEGREES(RADIANS(dec)) > 5",
    "RADIANS(ra) < 2",
    "SIN(RADIANS(dec)) > 0.1",
    "COS(RADIANS(ra)) > 0",
    "TAN(RADIANS(dec)) < 0.1",
    "COT(RADIANS(ra)) > 1",
    "ASIN(dec / 90) > 0.05",
    "ACOS(reliability) < 0.9",
    "ACOS(flux / 100000) < 1",  # beyond [-1, 1]: NULL
    "ATAN(mag_err * 10) < 0.8",
    "ATAN2(dec, ra) > 0",
    "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 20)) = 1",
    "1 = CONTAINS(POINT(ra, dec), CIRCLE(POINT({ra}, {dec}), 20))",
    "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 20)) = 0",
    "INTERSECTS(CIRCLE('ICRS', {ra}, {dec}, 20), POINT('ICRS', ra, dec)) = 1",
    "CONTAINS(POINT('ICRS', ra, dec), {box}) = 1",
    "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra}, {dec})) < 20",
    "DISTANCE(ra, dec, {ra}, {dec}) > 20",
    "COORD1(POINT('ICRS', ra, dec)) > 180",
    "COORD2(POINT('ICRS', ra, dec)) < 0",
    "alert_id > 1000000000004000",
]


def example_annotators(alerts: list[Alert], folder: Path) -> list[ComponentSpec]:
    """The annotators of the example pipeline, with a watchlist, a map and a catalogue about some of
    ``alerts`` (every third position, every other one, a cone)."""
    specs = tomllib.loads((REPO / "examples" / "pipelines" / "annotated.toml").read_text())["annotators"]
    ra, dec = np.array([a.ra for a in alerts]), np.array([a.dec for a in alerts])
    for spec in specs:
        if spec["use"] == "watchlists":
            targets = [{"name": f"near-{i}", "ra": ra[i], "dec": dec[i]} for i in range(0, len(ra), 3)]
            spec["config"]["lists"][0]["targets"] += targets
    middle = len(ra) // 2
    cone = MOC.from_cone(lon=ra[middle] * u.deg, lat=dec[middle] * u.deg, radius=30 * u.deg, max_depth=6)
    specs.append({"use": "watchmaps", "config": {"maps": [{"name": "gw", "moc": cone.serialize("json")}]}})
    chosen = np.arange(0, len(ra), 2)
    CatalogIndex.build(
        folder / "gaia",
        "gaia",
        ra[chosen],
        dec[chosen] + np.linspace(0.05, 1.2, chosen.size) / 3600,  # 0.05" to 1.2" north of each
        np.array([f"Gaia-{i}" for i in chosen]),
        {"phot_g_mean_mag": np.linspace(15, 21, chosen.size)},
    )
    specs.append({"use": "xmatch", "config": {"catalogs": [{"name": "gaia"}], "directory": str(folder)}})
    return [ComponentSpec(**spec) for spec in specs]


def annotated_alerts(messages: list[RawMessage], folder: Path) -> list[Alert]:
    """The messages' alerts, annotated, once each (the first of an id, as the store keeps it)."""
    decoder = AlertDecoder()
    decoded = [a for m in messages for a in decoder.decode(m.payload, m.origin)]
    collected = run_components(example_annotators(decoded, folder), messages, output_dir=folder)
    assert collected.dead_letters == {}
    first: dict[tuple[str, int], Alert] = {}
    for alert in collected.alerts:
        first.setdefault(alert.key, alert)
    return list(first.values())


def placed_conditions(alerts: list[Alert], conditions: Sequence[str] = CONDITIONS) -> list[tuple[str, str]]:
    """Each condition as written, and about a position among ``alerts`` (the median one)."""
    ra, dec = float(np.median([a.ra for a in alerts])), float(np.median([a.dec for a in alerts]))
    corners = [(ra - 20, dec - 20), (ra + 20, dec - 20), (ra + 20, dec + 20), (ra - 20, dec + 20)]
    box = "POLYGON('ICRS', " + ", ".join(f"{x!r}, {y!r}" for x, y in corners) + ")"
    return [
        (c, c.replace("{ra}", repr(ra)).replace("{dec}", repr(dec)).replace("{box}", box)) for c in conditions
    ]


def store_alerts(location: str | Path, alerts: list[Alert]) -> None:
    store = open_store(location)
    try:
        for start in range(0, len(alerts), 200):
            store.write(alerts[start : start + 200], {})
    finally:
        store.close()
