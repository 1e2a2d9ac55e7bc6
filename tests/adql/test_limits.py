"""The limits on a filter's size and depth, checked on arrival: each violation is a FilterSyntaxError
naming the limit and where (line and column, the API's 422), never a RecursionError, even from deep
in a stack; and what is within them (a 490-term AND chain, a long IN list) compiles and judges."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from starling.adql.language import compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.adql.plan import FilterPlan
from starling.alert.model import Alert
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig, BatchColumns, current_catalogue
from starling.core.component import Batch
from tests.support.helpers import synthetic_alerts

CHAIN_490 = " AND ".join(f"mag < {20 + i / 1000:.3f}" for i in range(490))  # all of them: mag < 20


def at_depth(frames: int, call: Callable[[], Any]) -> Any:
    """``call()`` from ``frames`` frames deeper (as from inside a web framework's handler)."""
    return call() if frames <= 0 else at_depth(frames - 1, call)


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    return synthetic_alerts(400)


def _expected(alerts: list[Alert], keep: Callable[[Alert], bool]) -> list[bool]:
    return [bool(a.mag is not None and keep(a)) for a in alerts]


@pytest.mark.parametrize("depth", [0, 600])
def test_a_490_term_and_chain_compiles_and_judges(alerts: list[Alert], depth: int) -> None:
    compiled = at_depth(depth, lambda: compile_filter(CHAIN_490))
    expected = _expected(alerts, lambda a: a.mag < 20)
    assert 0 < sum(expected) < len(alerts)
    assert compiled.evaluate(BatchColumns(alerts)).tolist() == expected
    plan = FilterPlan([("chain", CHAIN_490), ("other", CHAIN_490.replace("20.", "19."))], current_catalogue())
    judgement = at_depth(depth, lambda: plan.judge(BatchColumns(alerts)))
    assert judgement.failures == {}
    assert judgement.verdicts["chain"].tolist() == expected


def test_a_490_term_chain_as_a_users_filter_in_the_stage(alerts: list[Alert]) -> None:
    chain = AdqlFilter(AdqlFilterConfig(expression=CHAIN_490), "chain")
    ors = " OR ".join(f"dec > {90 - i / 100:.2f}" for i in range(490))  # dec > 85.11
    other = AdqlFilter(AdqlFilterConfig(expression=ors), "ors")
    batch = Batch(alerts)
    AdqlFilter.cooperate(batch, [chain, other])
    for component in (chain, other):
        component.process(batch)
    assert batch.matches["chain"] == [
        a for a, keep in zip(alerts, _expected(alerts, lambda a: a.mag < 20), strict=True) if keep
    ]
    assert batch.matches["ors"] == [a for a in alerts if a.dec > 85.11]
    assert chain.counters()["errors"] == other.counters()["errors"] == 0


# (what, expression, words the message must hold, line, column)
REFUSED = [
    ("300 nested brackets", "(" * 300 + "mag < 19" + ")" * 300, "more than 30 brackets", 1, 31),
    (
        "300 nested brackets on line 2",
        "mag < 19 AND\n" + "(" * 300 + "mag < 19" + ")" * 300,
        "more than 30 brackets",
        2,
        31,
    ),
    ("31 nested functions", "ABS(" * 31 + "mag" + ")" * 31 + " < 19", "more than 30 brackets", 1, 124),
    ("300 nested functions", "SQRT(" * 300 + "mag" + ")" * 300 + " < 19", "more than 30 brackets", 1, 155),
    ("150 NOTs", "NOT " * 150 + "mag < 19", "more than 100 levels", 1, 405),
    ("150 minus signs", "- " * 150 + "mag < 19", "more than 100 levels", 1, 203),
    ("150 sums", " + ".join(["mag"] * 150) + " > 0", "more than 100 levels", 1, 1),
    ("ROUND to 400 decimals", "ROUND(mag, 400) < 19", "at most 300 decimals", 1, 12),
    ("13,000 terms", " AND ".join(["mag < 19"] * 13_000), "more than 50,000", 1, 12_500 * 13 + 1),
]


@pytest.mark.parametrize("depth", [0, 500], ids=["shallow stack", "deep stack"])
@pytest.mark.parametrize(
    ("expression", "words", "line", "column"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_each_limit_is_refused_naming_it_and_where(
    expression: str, words: str, line: int, column: int, depth: int
) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        at_depth(depth, lambda: compile_filter(expression))
    error = caught.value
    if depth and "too deeply for the parser" in error.message:  # the stack ran out first: said so
        assert "at most 30 brackets and 100 levels" in error.message
        return
    assert words in error.message
    assert (error.line, error.column) == (line, column)
    assert error.problem() == {"loc": ["expression"], "msg": error.message, "line": line, "column": column}


def test_a_refused_filter_is_a_config_error_naming_the_limit() -> None:
    with pytest.raises(ValidationError, match="more than 30 brackets"):
        AdqlFilterConfig(expression="(" * 300 + "mag < 19" + ")" * 300)


def test_within_the_limits_is_accepted(alerts: list[Alert]) -> None:
    columns = BatchColumns(alerts)
    deep = compile_filter("ABS(" * 29 + "mag" + ")" * 29 + " < 19").evaluate(columns)
    assert deep.tolist() == _expected(alerts, lambda a: a.mag < 19)
    nested = compile_filter("SQRT(" * 5 + "ABS(" * 20 + "mag" + ")" * 25 + " < 1.1").evaluate(columns)
    assert nested.tolist() == _expected(alerts, lambda a: abs(a.mag) ** (1 / 32) < 1.1)
    nots = compile_filter("NOT " * 97 + "mag < 19").evaluate(columns)  # and <, mag, its name: 100
    assert nots.tolist() == _expected(alerts, lambda a: not a.mag < 19)
    assert compile_filter("ROUND(mag, 300) < 19").evaluate(columns).tolist() == _expected(
        alerts, lambda a: a.mag < 19
    )


@pytest.mark.parametrize("items", [2_000, 5_000])
def test_a_long_in_list_compiles_and_judges(alerts: list[Alert], items: int) -> None:
    ids = [a.alert_id for a in alerts[::3]]
    listed = ids + list(range(1, items - len(ids) + 1))
    expression = f"alert_id IN ({', '.join(map(str, listed))})"
    start = time.perf_counter()
    compiled = compile_filter(expression)
    plan = FilterPlan([("in", expression), ("not in", "NOT " + expression)], current_catalogue())
    judgement = plan.judge(BatchColumns(alerts))
    elapsed = time.perf_counter() - start
    expected = [a.alert_id in set(ids) for a in alerts]
    assert compiled.evaluate(BatchColumns(alerts)).tolist() == expected
    assert judgement.verdicts["in"].tolist() == expected
    assert judgement.verdicts["not in"].tolist() == [not e for e in expected]
    assert elapsed < 10, f"{elapsed:.1f} s"  # before: 7.5 s for 10,000 items, the square of the list


def test_the_stack_is_what_the_tests_assume() -> None:
    assert sys.getrecursionlimit() >= 1000
