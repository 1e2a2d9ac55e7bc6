"""A filter cut into its parts (``starling.adql.explain``): each part as written, the parts a person asks
about and no others, each with the ADQL of its value over ``starling.alert_fields``, within its bounds.
Each part's value on real alerts is held to the stream filter in ``tests/web/test_explain.py``."""

from __future__ import annotations

import pytest

from starling.adql.explain import MAX_PARTS, MAX_QUERY_CHARS, Part, explain
from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from tests.support.annotated import CONDITIONS


def _shape(part: Part) -> object:
    return (
        (part.text, part.kind, [_shape(c) for c in part.children])
        if part.children
        else (part.text, part.kind)
    )


@pytest.mark.parametrize("condition", CONDITIONS)
def test_every_part_is_a_slice_of_the_expression_as_written(condition: str) -> None:
    expression = condition.replace("{ra}", "10.5").replace("{dec}", "-3").replace("{box}", "CIRCLE(1, 2, 3)")
    explanation = explain(expression)
    assert explanation.root.text == expression
    for part in explanation.parts():
        assert part.text in expression, part  # not written out again: the slice read back as the part
        compile_filter(part.text if part.kind == "condition" else f"({part.text}) IS NULL")


def test_a_condition_is_cut_into_its_conditions_and_the_values_that_read_fields() -> None:
    expression = "mag < 19 and (band = 'r' OR not ndethist * 2 BETWEEN 1 AND PI() + 1) AND dec > 0"
    assert _shape(explain(expression).root) == (
        expression,
        "condition",
        [
            ("mag < 19", "condition", [("mag", "value")]),
            (
                "band = 'r' OR not ndethist * 2 BETWEEN 1 AND PI() + 1",
                "condition",
                [
                    ("band = 'r'", "condition", [("band", "value")]),
                    (
                        "not ndethist * 2 BETWEEN 1 AND PI() + 1",
                        "condition",
                        [
                            (
                                "ndethist * 2 BETWEEN 1 AND PI() + 1",
                                "condition",
                                [("ndethist * 2", "value", [("ndethist", "value")])],
                            )
                        ],
                    ),
                ],
            ),
            ("dec > 0", "condition", [("dec", "value")]),
        ],
    )


@pytest.mark.parametrize(
    ("expression", "children"),
    [
        ("band NOT IN ('g', NULL)", ["band"]),  # one condition as written, its NOT inside it
        ("mag NOT BETWEEN 18 AND 19", ["mag"]),
        ("mag IS NOT NULL", ["mag"]),
        ("object_id NOT LIKE 'ZTF%'", ["object_id"]),
        ("NOT band IN ('g')", ["band IN ('g')"]),  # a NOT in front is a part above
        ("NOT (mag IS NULL)", ["mag IS NULL"]),
        ("-(-mag) > 1", ["-(-mag)"]),
        (
            "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 1, 2, 3)) = 1",
            ["CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 1, 2, 3))"],
        ),
        ("NULL IS NULL", []),  # a constant condition is a part; a constant value is none
        ("mag < PI() * 6", ["mag"]),
    ],
)
def test_what_is_one_part_and_what_is_under_it(expression: str, children: list[str]) -> None:
    root = explain(expression).root
    assert root.text == expression
    assert [child.text for child in root.children] == children


def test_geometry_is_seen_through_to_its_fields() -> None:
    root = explain("DISTANCE(POINT(ra, dec), POINT(1, 2)) < 1").root
    (distance,) = root.children
    assert [child.text for child in distance.children] == ["ra", "dec"]


def test_each_part_is_its_value_over_the_view() -> None:
    explanation = explain('"history-summary".n_detections >= 2 OR history_summary.peak_mag - mag > 1')
    first, second = explanation.root.children
    assert first.adql == (
        'CASE WHEN "history-summary.n_detections" >= 2 THEN 1 '
        'WHEN NOT ("history-summary.n_detections" >= 2) THEN 0 END'
    )
    assert [c.adql for c in second.children] == ['"history-summary.peak_mag" - mag']
    assert explanation.fields == ("history-summary.n_detections", "history-summary.peak_mag", "mag")
    assert explanation.query("alert_id = 1").endswith(
        '"history-summary.n_detections" AS f0, "history-summary.peak_mag" AS f1, mag AS f2 '
        "FROM starling.alert_fields WHERE alert_id = 1"
    )
    assert len(explanation.parts()) == 7  # the whole, two conditions, a difference, three fields
    assert all(f" AS p{i}," in explanation.query("") for i in range(7))


def test_bounds_are_refused_with_a_message() -> None:
    explain(" OR ".join(f"mag < {i}" for i in range(MAX_PARTS // 2 - 1)))  # within: two parts each
    with pytest.raises(FilterSyntaxError, match=f"more than {MAX_PARTS} parts"):
        explain(" OR ".join(f"mag < {i}" for i in range(MAX_PARTS // 2)))
    long = "object_id IN (" + ", ".join(f"'ZTF{i:020d}'" for i in range(2000)) + ")"
    nested = f"NOT (NOT (NOT (NOT ({long}))))"
    assert len(nested) < 60_000
    with pytest.raises(FilterSyntaxError, match=f"more than {MAX_QUERY_CHARS:,} characters"):
        explain(nested)
