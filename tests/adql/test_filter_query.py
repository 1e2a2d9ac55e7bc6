"""A filter as a TAP query (``filter_as_query``): its fields as the columns of ``starling.alert_fields``
(an annotation as one delimited name, whichever alias the filter used), ADQL's names for the functions,
a query TAP's checker takes, and the filter's own errors at the filter's own positions."""

from __future__ import annotations

import pytest

from starling.adql.filter_query import VIEW, adql_identifier, column_name, filter_as_query, view_fields
from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.adql.query import check_query, parse_query
from starling.vo.tap_query import served_tables


def test_fields_become_the_views_columns_and_annotations_one_delimited_name() -> None:
    query = filter_as_query(
        'mag < 19 AND history_summary.peak_mag < 18 AND "history-summary".n_detections >= 2 '
        "AND lc_features.R.rise_rate > 0 AND xmatch.gaia.dist_arcsec < 1.5",
        "alert_id",
    )
    assert query == (
        f'SELECT alert_id FROM {VIEW} WHERE mag < 19 AND "history-summary.peak_mag" < 18 '
        'AND "history-summary.n_detections" >= 2 AND "lc-features.r.rise_rate" > 0 '
        'AND "xmatch.gaia.dist_arcsec" < 1.5'
    )
    checked = check_query(parse_query(query), query, served_tables())
    assert [t.adql_name for t in checked.tables] == [VIEW]


def test_functions_are_written_with_adqls_names() -> None:
    query = filter_as_query("CEILING(mag) = 20 AND TRUNCATE(mag, 1) > 1 AND LOG10(flux) > 3 AND mag % 2 > 1")
    assert query.endswith(
        "WHERE CEILING(mag) = 20 AND TRUNCATE(mag, 1) > 1 AND LOG10(flux) > 3 AND MOD(mag, 2) > 1"
    )
    check_query(parse_query(query), query, served_tables())


@pytest.mark.parametrize(
    "expression",
    ["mag < 19 AND ndethst > 2", "mag <", "band = 'r", "ROUND(mag, 400) > 1", "mag < 19 AND mag"],
)
def test_a_bad_filter_is_refused_as_compile_filter_refuses_it(expression: str) -> None:
    with pytest.raises(FilterSyntaxError) as as_filter:
        compile_filter(expression)
    with pytest.raises(FilterSyntaxError) as as_query:
        filter_as_query(expression)
    assert (as_query.value.message, as_query.value.line, as_query.value.column) == (
        as_filter.value.message,
        as_filter.value.line,
        as_filter.value.column,
    )


def test_a_field_the_view_has_no_column_for_is_refused_where_it_is() -> None:
    compile_filter("mag < 19 AND\n  xmatch.ps1.dist_arcsec < 1")  # a field of the filter language
    with pytest.raises(FilterSyntaxError, match=r"no column of starling\.alert_fields") as refused:
        filter_as_query("mag < 19 AND\n  xmatch.ps1.dist_arcsec < 1")
    assert (refused.value.line, refused.value.column) == (2, 3)


def test_every_field_is_a_column_once_named_as_the_filter_names_it() -> None:
    fields = view_fields()
    names = [f.name for f in fields]
    assert len(names) == len(set(names))
    assert names[:3] == ["survey", "alert_id", "object_id"]
    assert {"ndethist", "age_days", "history-summary.peak_mag", "lc-features.g.peak_mag"} <= set(names)
    assert {"watchlists.favourites.count", "watchmaps.gw.inside", "xmatch.gaia.phot_g_mean_mag"} <= set(names)
    assert all(column_name(f) == f.name for f in fields)
    assert adql_identifier("mag") == "mag"
    assert adql_identifier("xmatch.gaia.id") == '"xmatch.gaia.id"'
