"""The values filters read are total: on real alerts with sentinels in their photometry, every field (the
alert's own, its history's, each annotator's) is a finite number or NULL, and a filter over them judges
every alert without raising. A column built from odd values (NaN in a whole-number field, an integer
beyond 64 bits, a string where a number belongs) holds NULL there, never an exception.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from starling.adql.fields import AlertColumns, FieldDef, catalogue
from starling.adql.language import compile_filter
from starling.adql.values import Vec
from starling.core.component import RunContext
from starling.core.registry import build_component
from tests.support.sentinels import mutations, real_alerts, renormalized, with_sentinels

SENTINEL_SETTINGS = settings(
    max_examples=int(os.environ.get("STARLING_SENTINEL_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ANNOTATORS = ("history-summary", "lc-features", "solar-system")
# Fields declared with a pattern, named as a filter would name them.
NAMED = (
    "lc_features.r.peak_mag", "lc_features.g.rise_rate", "lc_features.i.linear_trend",
    "lc_features.colors.g_r", "lc_features.colors.r_i_dt",
)  # fmt: skip
EXPRESSION = (
    "(mag < 20 OR snr > 5 OR flux / flux_err > 3 OR reliability > 0.5) AND age_days >= 0 "
    "AND (history_summary.peak_mag < 22 OR lc_features.r.rise_rate > 0.01 OR solar_system.known = 0)"
)


@pytest.fixture(scope="module")
def annotators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    built = [build_component(name, {}) for name in ANNOTATORS]
    for annotator in built:
        annotator.setup(RunContext(output_dir=tmp_path_factory.mktemp("fields")))
    yield built
    for annotator in built:
        annotator.close()


def _fields() -> list[FieldDef]:
    found = catalogue()
    named = [found.resolve(name) for name in NAMED]
    return [*found.fields.values(), *(f for f in named if f is not None)]


def _bad_values(column: Vec) -> list[float]:
    values = np.broadcast_to(np.asarray(column.values, dtype=float), (column.values.size,))
    null = np.broadcast_to(column.null, values.shape)
    return [float(v) for v in values[~null & ~np.isfinite(values)]]


@pytest.mark.samples
@given(data=st.data())
@SENTINEL_SETTINGS
def test_every_field_of_real_alerts_with_sentinels_is_finite_or_null(
    samples: Path, annotators: list[Any], data: st.DataObject
) -> None:
    alerts = real_alerts(samples / "realworld")
    alert = data.draw(st.sampled_from(alerts), label="alert")
    changes = data.draw(mutations(alert.survey), label="changes")
    note(f"{alert.survey} {alert.object_id} {alert.origin}")
    batch = [renormalized(alert, with_sentinels(alert.record, alert.survey, changes)), renormalized(alert)]
    for annotator in annotators:
        annotator.annotate(batch)
    columns = AlertColumns(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        columns.prefetch(_fields())
        for field in _fields():
            column = columns.column(field)
            if column.kind == "number":
                assert _bad_values(column) == [], field.name
        kept = compile_filter(EXPRESSION).evaluate_alerts(batch)
    assert len(kept) == len(batch)


@pytest.mark.parametrize(
    ("values", "integer", "expected"),
    [
        ([1.5, math.nan, math.inf, -math.inf, None], False, [1.5, None, None, None, None]),
        ([1.5, "19.5 mag", {"a": 1}, 2.0, 2**2000], False, [1.5, None, None, 2.0, None]),
        ([3, math.nan, 2**70, None, 1e308], True, [3, None, None, None, None]),
        ([3, 4.0, 4.5, "x", -(2**63)], True, [3, 4, None, None, -(2**63)]),
        ([2**62 + 1, 5], True, [2**62 + 1, 5]),  # ids beyond 2**53 stay exact
    ],
)
def test_a_column_of_odd_values_holds_null_where_there_is_no_number(
    values: list[Any], integer: bool, expected: list[Any]
) -> None:
    column = Vec.numbers(values, integer)
    null = np.broadcast_to(column.null, (len(values),))
    found = [
        None if n else (int(v) if integer else float(v)) for v, n in zip(column.values, null, strict=True)
    ]
    assert found == expected
