"""A bad filter is refused with the position of the fault and words a person can act on."""

from __future__ import annotations

import pytest

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from tests.support.paths import REPO

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

    from starling.components.filters.adql import fields_markdown

    document = (REPO / "docs" / "filter-language.md").read_text()
    table = document.split("<!-- fields: generated -->\n", 1)[1].split("<!-- fields: end -->", 1)[0]
    assert table == fields_markdown(), (
        "docs/filter-language.md is stale: run `starling filter fields --markdown`"
    )


LIMITS = [
    # (what, expression, words the message must hold, line, column): a bracket beyond the limit is
    # named; a token beyond the size limit (4 a term, "mag < 19 AND ": 13 characters) is named.
    ("300 brackets", "(" * 300 + "mag < 19" + ")" * 300, "more than 30 brackets", 1, 31),
    ("31 functions", "ABS(" * 31 + "mag" + ")" * 31 + " < 19", "more than 30 brackets", 1, 30 * 4 + 4),
    ("150 sums", " + ".join(["mag"] * 150) + " > 0", "more than 100 levels", 1, 1),
    ("2000 NOTs", "NOT " * 2000 + "mag < 19", "more than 100 levels", 1, 101 * 4 + 1),
    ("13,000 terms", " AND ".join(["mag < 19"] * 13_000), "too long: more than 50,000", 1, 12_500 * 13 + 1),
]


@pytest.mark.parametrize(
    ("expression", "words", "line", "column"), [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS]
)
def test_the_limits_refuse_with_a_message(expression: str, words: str, line: int, column: int) -> None:
    """Too deep or too long is a FilterSyntaxError with a position, never a RecursionError."""
    with pytest.raises(FilterSyntaxError) as caught:
        compile_filter(expression)
    assert words in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)


def test_up_to_the_limits_is_accepted() -> None:
    assert compile_filter("(" * 30 + "mag < 19" + ")" * 30).fields == {"mag"}
    assert compile_filter("ABS(" * 29 + "mag" + ")" * 29 + " < 19").fields == {"mag"}
    assert compile_filter(" + ".join(["mag"] * 90) + " > 0").fields == {"mag"}
