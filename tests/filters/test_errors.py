"""A bad filter is refused with the position of the fault and words a person can act on."""

from __future__ import annotations

import pytest

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError

CASES = [
    # (expression, line, column, words the message must hold)
    ("mag <", 1, 5, "missing"),
    ("mag < 19 AND AND reliability > 0.5", 1, 14, "missing"),
    ("(mag < 19", 1, 8, "Expecting )"),
    ("mag < 19 foo", 1, 10, "Unexpected"),
    ("mgn < 19", 1, 1, "unknown field 'mgn'; did you mean mag"),
    ("mag < 19 AND\n    relability > 0.8", 2, 5, "did you mean reliability"),
    ("history_summary.peek_mag < 18", 1, 1, "did you mean history_summary.peak_mag"),
    ("band = 1", 1, 1, "cannot compare a string (band) with a number (1)"),
    ("mag + 1", 1, 1, "a filter is a condition"),
    ("FOO(mag) > 1", 1, 1, "unknown function FOO"),
    ("mag = 'x", 1, 7, "not closed"),
    ("BOX('ICRS', 1, 2, 3, 4) = 1", 1, 1, "use POLYGON"),
    ("CONTAINS(POINT('GALACTIC', ra, dec), CIRCLE(1, 2, 3)) = 1", 1, 16, "'GALACTIC' is not served"),
    ("CONTAINS(CIRCLE(1, 2, 3), POINT(ra, dec)) = 1", 1, 1, "takes a POINT and a CIRCLE or POLYGON"),
    ("CONTAINS(POINT(ra, dec), POLYGON(1, 2, 3, 4)) = 1", 1, 26, "three or more vertices"),
    ("DISTANCE(POINT(ra, dec)) < 1", 1, 1, "DISTANCE takes 4 arguments, not 1"),
    ("SQRT(band) > 1", 1, 6, "band is a string, where a number is needed"),
    ("mag IN (SELECT 1)", 1, 1, "not a query"),
    ("", 1, 1, "empty"),
]


@pytest.mark.parametrize(
    ("expression", "line", "column", "words"), CASES, ids=[c[0] or "empty" for c in CASES]
)
def test_the_error_names_where_and_why(expression: str, line: int, column: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        compile_filter(expression)
    error = caught.value
    assert words in error.message
    assert (error.line, error.column) == (line, column)
    # The message shows the line with a caret under the fault.
    shown = str(error).splitlines()
    assert shown[-1] == " " * (column - 1) + "^"
    assert error.problem()["column"] == column


def test_the_documented_fields_are_the_generated_ones() -> None:
    from pathlib import Path

    from starling.cli.filters import fields_markdown

    document = (Path(__file__).resolve().parents[2] / "docs" / "filter-language.md").read_text()
    table = document.split("<!-- fields: generated -->\n", 1)[1].split("<!-- fields: end -->", 1)[0]
    assert table == fields_markdown(), (
        "docs/filter-language.md is stale: run `starling filter fields --markdown`"
    )
