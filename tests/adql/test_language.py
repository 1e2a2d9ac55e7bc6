"""Every operator and function of the filter language on the real sample alerts (ZTF and Rubin, every
schema version), against the same quantity computed independently in plain Python (or astropy), with
SQL's rule for NULL: a comparison with a missing value is unknown, and unknown is neither kept by the
filter nor by its negation."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from starling.adql.fields import AlertColumns
from starling.adql.language import compile_filter
from starling.alert.model import Alert
from starling.components.annotators.history import HistorySummary, HistorySummaryConfig
from tests.support.helpers import decode_samples

Expected = Callable[[Alert], bool | None]  # None: unknown (a NULL was involved)


@pytest.fixture(scope="module")
def alerts(samples: Path) -> list[Alert]:
    found = decode_samples(samples)
    HistorySummary(HistorySummaryConfig(), "history-summary").annotate(found)
    assert {a.survey for a in found} == {"ztf", "rubin"}
    assert len(found) >= 12
    return found


def _known(*values: Any) -> bool:
    return all(v is not None for v in values)


def _cmp(value: Any, test: Callable[[Any], bool]) -> bool | None:
    return test(value) if value is not None else None


def _sep_deg(a: Alert, ra: float, dec: float) -> float:
    here = SkyCoord(a.ra * u.deg, a.dec * u.deg)
    return float(here.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg)


# (expression, expected per alert)
CASES: list[tuple[str, Expected]] = [
    # comparisons
    ("mag < 19", lambda a: _cmp(a.mag, lambda m: m < 19)),
    ("mag <= 18.5", lambda a: _cmp(a.mag, lambda m: m <= 18.5)),
    ("mag > 20", lambda a: _cmp(a.mag, lambda m: m > 20)),
    ("mag >= 17.0", lambda a: _cmp(a.mag, lambda m: m >= 17)),
    ("band = 'g'", lambda a: a.band == "g"),
    ("band <> 'r'", lambda a: a.band != "r"),
    ("band != 'i'", lambda a: a.band != "i"),
    ("survey = 'ztf'", lambda a: a.survey == "ztf"),
    ("reliability > 0.5", lambda a: _cmp(a.reliability, lambda r: r > 0.5)),
    # arithmetic
    ("mag + 1 > 19.5", lambda a: _cmp(a.mag, lambda m: m + 1 > 19.5)),
    ("mag - mag_err < 18", lambda a: a.mag - a.mag_err < 18 if _known(a.mag, a.mag_err) else None),
    ("mag * 2 > 36", lambda a: _cmp(a.mag, lambda m: m * 2 > 36)),
    ("flux / flux_err > 5", lambda a: a.flux / a.flux_err > 5 if _known(a.flux, a.flux_err) else None),
    ("-mag < -18", lambda a: _cmp(a.mag, lambda m: -m < -18)),
    ("MOD(alert_id, 7) = 3", lambda a: a.alert_id % 7 == 3),
    ("alert_id % 2 = 0", lambda a: a.alert_id % 2 == 0),
    ("snr > 10", lambda a: abs(a.flux) / a.flux_err > 10 if _known(a.flux, a.flux_err) else None),
    # predicates
    ("mag BETWEEN 17 AND 19", lambda a: _cmp(a.mag, lambda m: 17 <= m <= 19)),
    ("mag NOT BETWEEN 17 AND 19", lambda a: _cmp(a.mag, lambda m: not 17 <= m <= 19)),
    ("band IN ('g', 'r')", lambda a: a.band in ("g", "r")),
    ("band NOT IN ('g', 'r')", lambda a: a.band not in ("g", "r")),
    ("reliability IS NULL", lambda a: a.reliability is None),
    ("reliability IS NOT NULL", lambda a: a.reliability is not None),
    ("object_id LIKE 'ZTF%'", lambda a: a.object_id.startswith("ZTF")),
    ("object_id LIKE 'ZTF1_______'", lambda a: a.object_id.startswith("ZTF1") and len(a.object_id) == 11),
    ("object_id ILIKE 'ztf%'", lambda a: a.object_id.lower().startswith("ztf")),
    ("survey || band = 'ztfg'", lambda a: a.survey + a.band == "ztfg"),
    (
        "mag < 19 AND band = 'g'",
        lambda a: (
            None if a.mag is None and a.band == "g" else (a.mag is not None and a.mag < 19 and a.band == "g")
        ),
    ),
    (
        "mag < 18 OR survey = 'rubin'",
        lambda a: True if a.survey == "rubin" else _cmp(a.mag, lambda m: m < 18),
    ),
    # functions
    ("ABS(dec) > 30", lambda a: abs(a.dec) > 30),
    ("CEILING(mag) = 19", lambda a: _cmp(a.mag, lambda m: math.ceil(m) == 19)),
    ("FLOOR(mag) = 18", lambda a: _cmp(a.mag, lambda m: math.floor(m) == 18)),
    ("ROUND(mag, 1) >= 18.5", lambda a: _cmp(a.mag, lambda m: math.floor(m * 10 + 0.5) / 10 >= 18.5)),
    ("ROUND(ra) = 2 * FLOOR(ra / 2)", lambda a: math.floor(a.ra + 0.5) == 2 * math.floor(a.ra / 2)),
    ("TRUNCATE(mag, 1) < 18.5", lambda a: _cmp(a.mag, lambda m: math.trunc(m * 10) / 10 < 18.5)),
    ("SQRT(ABS(flux)) > 100", lambda a: _cmp(a.flux, lambda f: math.sqrt(abs(f)) > 100)),
    ("POWER(mag, 2) > 324", lambda a: _cmp(a.mag, lambda m: m**2 > 324)),
    ("EXP(mag / 10) > 6", lambda a: _cmp(a.mag, lambda m: math.exp(m / 10) > 6)),
    ("LOG(ABS(flux)) > 8", lambda a: _cmp(a.flux, lambda f: math.log(abs(f)) > 8)),
    ("LOG10(ABS(flux)) > 3.5", lambda a: _cmp(a.flux, lambda f: math.log10(abs(f)) > 3.5)),
    ("ABS(DEGREES(RADIANS(ra)) - ra) < 1e-9", lambda a: True),
    ("SIN(RADIANS(dec)) > 0.1", lambda a: math.sin(math.radians(a.dec)) > 0.1),
    ("COS(RADIANS(ra)) > 0", lambda a: math.cos(math.radians(a.ra)) > 0),
    ("TAN(RADIANS(ra / 4)) > 0.5", lambda a: math.tan(math.radians(a.ra / 4)) > 0.5),
    ("COT(RADIANS(ra / 4)) > 2", lambda a: 1 / math.tan(math.radians(a.ra / 4)) > 2),
    ("ASIN(dec / 90) > 0.2", lambda a: math.asin(a.dec / 90) > 0.2),
    ("ACOS(dec / 90) < 1.2", lambda a: math.acos(a.dec / 90) < 1.2),
    ("ATAN(dec) > 1.5", lambda a: math.atan(a.dec) > 1.5),
    ("ATAN2(dec, ra) > 0", lambda a: math.atan2(a.dec, a.ra) > 0),
    ("PI() * mag > 56", lambda a: _cmp(a.mag, lambda m: math.pi * m > 56)),
    ("LOWER(object_id) LIKE 'ztf%'", lambda a: a.object_id.lower().startswith("ztf")),
    ("UPPER(survey) = 'RUBIN'", lambda a: a.survey == "rubin"),
    ("COALESCE(reliability, 0) > 0.5", lambda a: (a.reliability or 0) > 0.5),
    ("RAND(7) >= 0", lambda a: True),
    # history and annotations
    ("ndethist >= 2", lambda a: len(a.history.detections) >= 2),
    ("nnondethist > 3", lambda a: len(a.history.upper_limits) > 3),
    ("nforcedhist > 0", lambda a: len(a.history.forced) > 0),
    ("age_days > 10", lambda a: a.mjd - min((d.mjd for d in a.history.detections), default=a.mjd) > 10),
    (
        "history_summary.peak_mag < 18.5",
        lambda a: _cmp(a.annotations["history-summary"]["peak_mag"], lambda m: m < 18.5),
    ),
    ('"history-summary".n_detections >= 2', lambda a: a.annotations["history-summary"]["n_detections"] >= 2),
]


@pytest.mark.samples
@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0] for c in CASES])
def test_operator_on_real_alerts(alerts: list[Alert], expression: str, expected: Expected) -> None:
    columns = AlertColumns(alerts)
    truth = [expected(a) for a in alerts]
    kept = compile_filter(expression).evaluate(columns)
    assert list(kept) == [t is True for t in truth]
    dropped = compile_filter(f"NOT ({expression})").evaluate(AlertColumns(alerts))
    assert list(dropped) == [t is False for t in truth]


@pytest.mark.samples
def test_the_cases_are_not_trivial(alerts: list[Alert]) -> None:
    """Most cases split the sample: some alerts pass, some do not (a check that passes all proves little)."""
    splitting = sum(1 for _, expected in CASES if len({expected(a) is True for a in alerts}) == 2)
    assert splitting >= len(CASES) * 0.6


@pytest.mark.samples
def test_geometry_on_real_positions(alerts: list[Alert]) -> None:
    centre = alerts[0]
    ra0, dec0 = centre.ra, centre.dec
    columns = AlertColumns(alerts)
    separations = [_sep_deg(a, ra0, dec0) for a in alerts]
    distinct = sorted(set(separations))  # several Rubin samples share one position
    middle = len(distinct) // 2  # a radius between two positions, never on one
    radius = (distinct[middle - 1] + distinct[middle]) / 2
    cases: list[tuple[str, list[bool]]] = [
        (
            f"DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra0!r}, {dec0!r})) < {radius!r}",
            [s < radius for s in separations],
        ),
        (f"DISTANCE(ra, dec, {ra0!r}, {dec0!r}) < {radius!r}", [s < radius for s in separations]),
        (
            f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0!r}, {dec0!r}, {radius!r}))",
            [s <= radius for s in separations],
        ),
        (
            f"CONTAINS(POINT(ra, dec), CIRCLE(POINT({ra0!r}, {dec0!r}), {radius!r})) = 0",
            [s > radius for s in separations],
        ),
        (
            f"INTERSECTS(CIRCLE('ICRS', {ra0!r}, {dec0!r}, 0.01), POINT('ICRS', ra, dec)) = 1",
            [s <= 0.01 for s in separations],
        ),
        ("COORD1(POINT('ICRS', ra, dec)) = ra AND COORD2(POINT(ra, dec)) = dec", [True] * len(alerts)),
    ]
    # A small box around the first alert, its edges great circles; only alerts at that spot are inside.
    d = 0.01
    corners = [(ra0 - d, dec0 - d), (ra0 + d, dec0 - d), (ra0 + d, dec0 + d), (ra0 - d, dec0 + d)]
    box = "POLYGON('ICRS', " + ", ".join(f"{r!r}, {c!r}" for r, c in corners) + ")"
    cases.append(
        (
            f"CONTAINS(POINT('ICRS', ra, dec), {box}) = 1",
            [abs(a.ra - ra0) < d and abs(a.dec - dec0) < d for a in alerts],
        )
    )
    for expression, expected in cases:
        assert list(compile_filter(expression).evaluate(columns)) == expected, expression
        assert any(expected) or "= 0" in expression


def test_polygon_edges_are_great_circles_and_poles_work() -> None:
    from starling.adql.geometry import polygon_contains

    # A triangle round the north pole: the pole is inside, a point at dec 80 outside the edges.
    ra = np.array([0.0, 123.0, 0.0, 60.0])
    dec = np.array([90.0, 89.5, 80.0, 85.5])
    inside = polygon_contains(ra, dec, [0.0, 120.0, 240.0], [85.0, 85.0, 85.0])
    assert list(inside) == [True, True, False, False]  # (60, 85.5) lies beyond the 0-120 great circle
    # The edge from (0, 85) to (120, 85) is a great circle: at ra 60 it reaches dec 87.50 (by hand:
    # the normalised mean of the two unit vectors), not dec 85 as a line of constant dec would.
    edge = polygon_contains(np.array([60.0, 60.0]), np.array([87.45, 87.55]), [0.0, 120.0, 240.0], [85.0] * 3)
    assert list(edge) == [False, True]
    # Across RA 0/360.
    wrap = polygon_contains(
        np.array([359.9, 0.1, 1.0]),
        np.array([0.0, 0.0, 0.0]),
        [359.5, 0.5, 0.5, 359.5],
        [-0.5, -0.5, 0.5, 0.5],
    )
    assert list(wrap) == [True, True, False]


def test_integers_stay_exact_beyond_2_to_the_53() -> None:
    from starling.adql.values import Vec

    class Rows:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

        def __len__(self) -> int:
            return len(self.ids)

        def column(self, field: Any) -> Vec:
            return Vec.numbers(self.ids, integer=True)

    ids = [1628364324215010017, 1628364324215010018]
    kept = compile_filter("alert_id = 1628364324215010017").evaluate(Rows(ids))
    assert list(kept) == [True, False]


class _Mags:
    """Four rows whose every field reads mag: bright, faint, missing (NULL), fainter."""

    def __len__(self) -> int:
        return 4

    def column(self, field: Any) -> Any:
        from starling.adql.values import Vec

        return Vec.numbers([15.0, 18.0, None, 21.0])


def _true_and_false(compiled: Any) -> tuple[list[bool], list[bool]]:
    """Where the condition is true and where it is false (neither: unknown)."""
    truth = compiled.root(_Mags())
    return list(np.broadcast_to(truth.true, (4,))), list(np.broadcast_to(truth.false, (4,)))


def test_a_chain_of_5000_ands_compiles_and_evaluates_without_recursion() -> None:
    expression = " AND ".join([f"mag < {1000 + i}" for i in range(4999)] + ["mag < 19"])
    compiled = compile_filter(expression)
    assert _true_and_false(compiled) == ([True, True, False, False], [False, False, False, True])
    assert list(compiled.evaluate(_Mags())) == [True, True, False, False]


def test_a_chain_of_5000_ors_compiles_and_evaluates_without_recursion() -> None:
    from starling.adql.fields import catalogue
    from starling.adql.plan import FilterPlan

    expression = " OR ".join([f"mag > {1000 + i}" for i in range(4999)] + ["mag < 16"])
    assert _true_and_false(compile_filter(expression)) == (
        [True, False, False, False],
        [False, True, False, True],
    )
    # The same through the plan, where its 5,000 numbers become parameters.
    verdicts = FilterPlan([("long", expression)], catalogue()).evaluate(_Mags())
    assert list(verdicts["long"]) == [True, False, False, False]


def test_null_where_a_condition_is_expected_is_unknown() -> None:
    assert _true_and_false(compile_filter("NULL OR mag < 19")) == ([True, True, False, False], [False] * 4)
    assert _true_and_false(compile_filter("NOT NULL AND mag < 19")) == (
        [False] * 4,
        [False, False, False, True],
    )


def test_the_front_end_stands_without_the_numpy_back_end() -> None:
    """Parsing and the checks are shared by every back end; they must not need the numpy one."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from starling.adql.checks import check_condition\n"
        "from starling.adql.fields import catalogue\n"
        "from starling.adql.parse import parse_condition\n"
        "text = 'mag < 19 AND CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) = 1'\n"
        "checked = check_condition(parse_condition(text), text, catalogue({}))\n"
        "assert checked.type(checked.tree) == 'bool' and checked.used == {'mag', 'ra', 'dec'}\n"
        "loaded = [m for m in sys.modules if m.startswith('starling.adql.numpy_')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
