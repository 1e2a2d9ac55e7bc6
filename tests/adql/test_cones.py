"""Cones judged by one matrix product (``geometry.near``) give the verdicts of the distances themselves.

k filters' cones over a batch are judged on the dot products of unit vectors; only pairs within
rounding of a cone's edge are decided by their chord. These tests put alerts exactly on the edges
(a radius equal to an alert's computed distance), at the centres and their antipodes, a hair away,
and NULL, with radii of 0, negative, 180 and beyond, and check every verdict against the distance
computed pair by pair.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest

from starling.adql.fields import FieldDef, catalogue
from starling.adql.geometry import Point, distance
from starling.adql.plan import FilterPlan
from starling.adql.values import Vec

COUNT, CONES = 3000, 40


class _Positions:
    """A batch's ra and dec columns alone, with the memo a stage's columns have."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray) -> None:
        self.values = {"ra": Vec.numbers(list(ra)), "dec": Vec.numbers(list(dec))}
        self.memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.values["ra"].values)

    def column(self, field: FieldDef) -> Vec:
        return self.values[field.name]


def _sky() -> tuple[_Positions, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ra = rng.uniform(0, 360, COUNT)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, COUNT)))
    cone_ra = np.round(rng.uniform(0, 360, CONES), 3)
    cone_dec = np.round(np.degrees(np.arcsin(rng.uniform(-1, 1, CONES))), 3)
    ra[:CONES], dec[:CONES] = cone_ra, cone_dec  # at the centres
    ra[CONES : 2 * CONES], dec[CONES : 2 * CONES] = (cone_ra + 180) % 360, -cone_dec  # their antipodes
    ra[2 * CONES : 3 * CONES], dec[2 * CONES : 3 * CONES] = cone_ra + 1e-9, cone_dec  # a hair away
    ra[3 * CONES] = np.nan  # NULL
    positions = _Positions(ra, dec)
    # Each cone's distance to every alert, as DISTANCE computes it: some radii are exactly these.
    centres = Point(
        Vec(cone_ra.reshape(-1, 1), np.bool_(False), "number"),
        Vec(cone_dec.reshape(-1, 1), np.bool_(False), "number"),
    )
    alerts = Point(positions.values["ra"], positions.values["dec"])
    distances = distance({}, alerts, centres).values
    radii = np.round(rng.uniform(0, 190, CONES), 2)
    radii[::3] = distances[::3, 3 * CONES + 7]  # on an alert's computed distance, to the bit
    radii[1], radii[2], radii[4], radii[5] = 0.0, -1.0, 180.0, 1e-10
    return positions, cone_ra, cone_dec, radii, distances


def _verdicts(expressions: list[str], positions: _Positions) -> np.ndarray:
    plan = FilterPlan([(f"f{i}", e) for i, e in enumerate(expressions)], catalogue())
    judgement = plan.judge(positions)
    assert not judgement.failures, next(iter(judgement.failures.values()))
    verdicts = judgement.verdicts
    return np.array([verdicts[f"f{i}"] for i in range(len(expressions))])


@pytest.mark.parametrize(("op", "mirrored"), [("<", ">"), ("<=", ">="), (">", "<"), (">=", "<=")])
def test_distance_compared_with_a_number_gives_the_distances_verdicts(op: str, mirrored: str) -> None:
    positions, cone_ra, cone_dec, radii, distances = _sky()
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
    expected = compare(distances, radii.reshape(-1, 1)) & ~np.isnan(distances)
    cones = [(float(a), float(d), float(r)) for a, d, r in zip(cone_ra, cone_dec, radii, strict=True)]
    point = "POINT('ICRS', ra, dec)"
    written = [f"DISTANCE({point}, POINT('ICRS', {a!r}, {d!r})) {op} {r!r}" for a, d, r in cones]
    reversed_ = [f"{r!r} {mirrored} DISTANCE(POINT({a!r}, {d!r}), {point})" for a, d, r in cones]
    four = [f"DISTANCE(ra, dec, {a!r}, {d!r}) {op} {r!r}" for a, d, r in cones]
    for expressions in (written, reversed_, four):
        assert np.array_equal(_verdicts(expressions, positions), expected), expressions[0]
    on_edge = distances[::3, 3 * CONES + 7] == radii[::3]
    assert on_edge.all()
    assert expected.any()
    assert not expected.all()


def test_a_circle_holds_what_its_chord_holds() -> None:
    positions, cone_ra, cone_dec, radii, _ = _sky()
    ra, dec = (np.radians(positions.values[k].values) for k in ("ra", "dec"))
    alerts = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
    ra0, dec0 = np.radians(cone_ra).reshape(-1, 1), np.radians(cone_dec).reshape(-1, 1)
    centres = np.stack([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)], axis=-1)
    chord = np.sqrt(((alerts - centres) ** 2).sum(axis=-1))  # the chord, pair by pair
    limit = 2.0 * np.sin(np.radians(np.minimum(radii, 180.0)) / 2.0).reshape(-1, 1)
    expected = chord <= limit
    expressions = [
        f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {a!r}, {d!r}, {r!r}))"
        for a, d, r in zip(cone_ra.tolist(), cone_dec.tolist(), radii.tolist(), strict=True)
    ]
    assert np.array_equal(_verdicts(expressions, positions), expected)
    assert expected[:, :CONES].diagonal()[radii >= 0].all()  # each centre is in its own cone
    assert not expected[2].any()  # a negative radius holds nothing


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_the_fast_distance_is_three_valued_as_the_distance_itself(op: str) -> None:
    """NOT of each comparison, through a plan (bounds as parameters, a negative one too), against the same
    DISTANCE computed as a value (``+ 0`` keeps it off the fast path); a non-finite centre is NULL."""
    positions, cone_ra, cone_dec, radii, _ = _sky()
    point = "POINT('ICRS', ra, dec)"
    centres = [(repr(float(a)), repr(float(d))) for a, d in zip(cone_ra, cone_dec, strict=True)]
    centres[3] = ("1e999", centres[3][1])  # an infinity: the distance is NULL, so is the comparison
    bounds = [float(r) for r in radii]
    for form in (
        "DISTANCE({p}, POINT({a}, {d})){plus} {op} {r!r}",
        "NOT (DISTANCE({p}, POINT({a}, {d})){plus} {op} {r!r})",
    ):
        fast = [
            form.format(p=point, a=a, d=d, r=r, op=op, plus="")
            for (a, d), r in zip(centres, bounds, strict=True)
        ]
        generic = [
            form.format(p=point, a=a, d=d, r=r, op=op, plus=" + 0")
            for (a, d), r in zip(centres, bounds, strict=True)
        ]
        assert np.array_equal(_verdicts(fast, positions), _verdicts(generic, positions)), form
    assert not _verdicts(fast, positions)[3].any()  # NOT (NULL op x) is unknown: no match either way
