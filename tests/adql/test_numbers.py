"""Numbers beyond the columns' range: a literal too large for int64 is compared as the number it is,
alone and in the shared plan, in every comparison, IN list, BETWEEN and arithmetic; whole-number
arithmetic never wraps around; a whole number and a real compare exactly (ids beyond 2**53)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from starling.adql.fields import FieldDef, catalogue
from starling.adql.language import compile_filter
from starling.adql.parse import number_literal, parse_condition
from starling.adql.plan import FilterPlan, parameterize
from starling.adql.structure import structure
from starling.adql.values import Vec, compare

MIN, MAX = -(2**63), 2**63 - 1
IDS = [MIN, MIN + 1, -(2**53) - 1, -1, 0, 1, 5, 2**53, 2**53 + 1, MAX - 1, MAX]
HUGE = "99999999999999999999999"
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Table:
    """Columns given by hand: alert_id (int), mag (float)."""

    def __init__(self, alert_id: list[int], mag: list[float | None] | None = None) -> None:
        self.data: dict[str, Vec] = {"alert_id": Vec.numbers(list(alert_id), integer=True)}
        self.data["mag"] = Vec.numbers(list(mag) if mag is not None else [18.0] * len(alert_id))
        self.memo: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.data["alert_id"].values)

    def column(self, field: FieldDef) -> Vec:
        return self.data[field.name]


def _alone_and_together(expressions: list[str], table: Table) -> dict[str, list[bool]]:
    """Each expression's verdicts alone, checked equal to the plan's (no failure in the plan)."""
    judgement = FilterPlan([(e, e) for e in expressions], catalogue()).judge(table)
    assert judgement.failures == {}
    verdicts = {}
    for expression in expressions:
        alone = compile_filter(expression).evaluate(table).tolist()
        assert judgement.verdicts[expression].tolist() == alone, expression
        verdicts[expression] = alone
    return verdicts


def _literal(value: int | float) -> str:
    text = repr(value) if isinstance(value, int) else f"{value:.17e}"
    return f"-{text[1:]}" if text.startswith("-") else text


@pytest.mark.parametrize("symbol", list(OPERATORS))
@pytest.mark.parametrize("literal", [HUGE, f"-{HUGE}", str(2**63), f"-{2**63}", f"-{2**63 + 1}", "1e400"])
def test_a_literal_beyond_int64_compares_as_the_number_it_is(symbol: str, literal: str) -> None:
    expression = f"alert_id {symbol} {literal}"
    verdicts = _alone_and_together([expression, f"alert_id {symbol} 5"], Table(IDS))[expression]
    exact = float(literal) if "e" in literal else int(literal)
    assert verdicts == [OPERATORS[symbol](i, exact) for i in IDS]


def test_the_reported_filter_no_longer_breaks_the_plan() -> None:
    """``alert_id = 99999999999999999999999`` compiled alone, but made the shared plan raise."""
    plan = FilterPlan(
        [("huge", f"alert_id = {HUGE}"), ("five", "alert_id = 5"), ("bright", "mag < 19")], catalogue()
    )
    judgement = plan.judge(Table(IDS))
    assert judgement.failures == {}
    assert not judgement.verdicts["huge"].any()
    assert judgement.verdicts["five"].tolist() == [i == 5 for i in IDS]
    assert judgement.verdicts["bright"].all()


def test_in_lists_and_between_with_numbers_beyond_int64() -> None:
    table = Table(IDS)
    cases = {
        f"alert_id IN ({HUGE}, 5, -{HUGE})": [i == 5 for i in IDS],
        f"alert_id NOT IN ({HUGE}, 5, -{HUGE})": [i != 5 for i in IDS],
        f"alert_id IN ({2**53 + 1}, {MAX})": [i in (2**53 + 1, MAX) for i in IDS],
        f"alert_id BETWEEN -{HUGE} AND {HUGE}": [True] * len(IDS),
        f"alert_id BETWEEN {HUGE} AND 1e400": [False] * len(IDS),
        f"alert_id NOT BETWEEN 0 AND {HUGE}": [i < 0 for i in IDS],
    }
    verdicts = _alone_and_together(list(cases), table)
    for expression, expected in cases.items():
        assert verdicts[expression] == expected, expression


def test_whole_numbers_and_reals_compare_exactly_beyond_two_to_the_53() -> None:
    """numpy would compare 2**53 + 1 with the real 2**53 as equal (it turns the id into a double)."""
    table = Table(IDS)
    cases = {
        "alert_id = 9007199254740992.0": [i == 2**53 for i in IDS],
        "alert_id > 9007199254740992.0": [i > 2**53 for i in IDS],
        "alert_id < 0.5": [i < 0.5 for i in IDS],
        "alert_id >= -0.5": [i >= -0.5 for i in IDS],
        "alert_id = 5.0": [i == 5 for i in IDS],
        "alert_id <= 9.2233720368547758e18": [True] * len(IDS),  # that real is 2**63
    }
    # With reals in the same group, an id beyond 2**53 stays exact (it is a parameter of its own kind).
    cases[f"alert_id = {2**53 + 1}"] = [i == 2**53 + 1 for i in IDS]
    verdicts = _alone_and_together(list(cases), table)
    for expression, expected in cases.items():
        assert verdicts[expression] == expected, expression


def test_whole_number_arithmetic_never_wraps_around() -> None:
    table = Table(IDS)
    cases = {
        f"alert_id + {MAX} > 0": [i + MAX > 0 for i in IDS],
        f"alert_id - {MAX} < 0": [i - MAX < 0 for i in IDS],
        "alert_id * 4 > 0": [i * 4 > 0 for i in IDS],
        "alert_id * -3 < 0": [i * -3 < 0 for i in IDS],
        "-alert_id > 0": [-i > 0 for i in IDS],
        f"alert_id + {HUGE} > 0": [True] * len(IDS),
        "alert_id % 0 = 0 OR NOT alert_id % 0 = 0": [False] * len(IDS),  # MOD(x, 0) is NULL
        "MOD(alert_id, 4) = -3": [i < 0 and -(-i % 4) == -3 for i in IDS],  # the dividend's sign
    }
    verdicts = _alone_and_together(list(cases), table)
    for expression, expected in cases.items():
        assert verdicts[expression] == expected, expression


def test_number_literals() -> None:
    assert number_literal("5") == 5
    assert isinstance(number_literal("5"), int)
    assert number_literal(str(MAX)) == MAX
    assert number_literal(str(2**63)) == 2.0**63
    assert number_literal(str(2**63 + 1)) > 2.0**63  # never rounded back onto int64's edge
    assert -number_literal(str(2**63 + 1)) < MIN
    assert number_literal("1" + "0" * 400) == math.inf
    assert number_literal("1.5") == 1.5


whole = st.integers(min_value=MIN, max_value=MAX)
literals = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([MIN, MAX, 2**53, 2**53 + 1, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e25, max_value=1e25),
)


@settings(max_examples=150, deadline=None)
@given(ids=st.lists(whole, min_size=1, max_size=6), literal=literals, symbol=st.sampled_from(list(OPERATORS)))
def test_comparisons_are_exact_for_any_id_and_any_number(
    ids: list[int], literal: int | float, symbol: str
) -> None:
    expression = f"alert_id {symbol} {_literal(literal)}"
    verdicts = _alone_and_together([expression, f"alert_id {symbol} 0.5"], Table(ids))[expression]
    exact = number_literal(_literal(abs(literal)))
    exact = -exact if literal < 0 else exact
    assert verdicts == [OPERATORS[symbol](i, exact) for i in ids]


def test_arithmetic_with_the_least_int64_literal_is_exact() -> None:
    """-9223372036854775808 is one literal, int64's least (it was the negation of 9223372036854775808, a
    real beyond int64, so alert_id - it was computed in doubles: 0 here, when it is 512)."""
    ids = [-9223372036854775296, MIN, -1, 0]
    cases = {
        f"alert_id - {MIN} > 0": [i - MIN > 0 for i in ids],
        f"alert_id - {MIN} = 512": [i - MIN == 512 for i in ids],
        f"alert_id = {MIN} + 512": [i == MIN + 512 for i in ids],
        f"alert_id = {MIN}": [i == MIN for i in ids],
        f"alert_id IN ({MIN}, 0)": [i in (MIN, 0) for i in ids],
        f"alert_id BETWEEN {MIN} AND {MIN + 1}": [i in (MIN, MIN + 1) for i in ids],
        f"- {MIN} > {MAX}": [True] * len(ids),  # its negation is beyond int64: 2**63, a real
        f"-({MIN}) > {MAX}": [True] * len(ids),
        "alert_id * - -1 = alert_id": [True] * len(ids),
    }
    verdicts = _alone_and_together(list(cases), Table(ids))
    for expression, expected in cases.items():
        assert verdicts[expression] == expected, expression


def test_a_minus_before_a_number_makes_one_literal_for_every_reader() -> None:
    tree = parse_condition(f"alert_id - {MIN} > - 5")
    assert sorted(literal.this for literal in tree.find_all(exp.Literal)) == ["-5", str(MIN)]
    assert not list(tree.find_all(exp.Neg))
    # In the shared plan, -5 and 5 are one template; int64's least is a whole-number parameter.
    template, values = parameterize(parse_condition(f"alert_id = {MIN} AND mag > -5"))
    assert values == [MIN, -5]
    assert isinstance(values[0], int)
    assert template.sql() == "alert_id = :i0 AND mag > :n1"
    assert structure(parameterize(parse_condition("mag > -5"))[0]) == structure(
        parameterize(parse_condition("mag > 5"))[0]
    )


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(whole, min_size=1, max_size=6), other=whole, symbol=st.sampled_from(["+", "-", "*"]))
def test_arithmetic_keeps_the_sign_of_the_exact_result(ids: list[int], other: int, symbol: str) -> None:
    compute = {"+": operator.add, "-": operator.sub, "*": operator.mul}[symbol]
    expression = f"alert_id {symbol} {_literal(other)} > 0"
    verdicts = _alone_and_together([expression], Table(ids))[expression]
    assert verdicts == [compute(i, other) > 0 for i in ids]


def test_a_real_column_against_a_huge_literal() -> None:
    table = Table([1, 2, 3], mag=[1e30, -1e30, None])
    verdicts = _alone_and_together([f"mag < {HUGE}", f"mag > -{HUGE}"], table)
    assert verdicts[f"mag < {HUGE}"] == [False, True, False]
    assert verdicts[f"mag > -{HUGE}"] == [True, False, False]
    assert np.isfinite(table.data["mag"].values[:2]).all()


_WORDS = st.text(alphabet="grizyu ßİ\u00e9", max_size=4)


@given(
    st.lists(_WORDS, min_size=1, max_size=40),
    st.lists(_WORDS, min_size=1, max_size=12),
    st.sampled_from([operator.eq, operator.ne]),
)
def test_strings_of_many_filters_compare_as_numpy_compares_them(
    column: list[str], parameters: list[str], op: Any
) -> None:
    """k filters' strings against n alerts' are compared as codes of the distinct strings: same truth."""
    x, y = np.array(column), np.array(parameters).reshape(-1, 1)
    assert np.array_equal(compare(op, x, y), op(x, y))
    assert np.array_equal(compare(op, y, x), op(y, x))
