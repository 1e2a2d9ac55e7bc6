"""LIKE and ILIKE: the meaning SQL gives them (checked against a plain dynamic-programming matcher on
random patterns and values), in time linear in the value (no backtracking), NOT LIKE, and ESCAPE."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starling.adql.fields import catalogue
from starling.adql.language import compile_filter
from starling.adql.like import LikePattern, PatternError
from starling.adql.parse import FilterSyntaxError
from starling.adql.values import Vec
from starling.alert.model import Alert
from starling.components.filters.adql import BatchColumns
from tests.support.helpers import synthetic_alerts

PATHOLOGICAL = "%a%a%a%a%a%a%a%a%b"  # took Python's re 28 s on fifty a's


def reference(pattern: str, value: str, escape: str | None = None) -> bool:
    """SQL's LIKE by dynamic programming over (pattern token, value prefix): plainly right, O(n*m)."""
    tokens: list[tuple[str, str]] = []  # ("run", ""), ("one", ""), ("char", c)
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == escape:
            tokens.append(("char", pattern[index + 1]))
            index += 2
            continue
        tokens.append(("run", "") if char == "%" else ("one", "") if char == "_" else ("char", char))
        index += 1
    reachable = [True] + [False] * len(value)  # value[:j] matched by the tokens so far
    for kind, char in tokens:
        after = [False] * (len(value) + 1)
        for j in range(len(value) + 1):
            if kind == "run":
                after[j] = reachable[j] or (j > 0 and after[j - 1])
            elif j > 0 and reachable[j - 1]:
                after[j] = kind == "one" or value[j - 1] == char
        reachable = after
    return reachable[len(value)]


ALPHABET = "ab%_!"
patterns = st.text(alphabet=ALPHABET, max_size=8)
values = st.text(alphabet="ab%_!c\n", max_size=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns, value=values)
def test_like_is_what_sql_says(pattern: str, value: str) -> None:
    compiled = LikePattern(pattern)
    expected = reference(pattern, value)
    assert compiled.match(value) == expected
    assert bool(compiled.match_array(np.array([value, "zz"]))[0]) == expected  # the column way too


def _escaped(pattern: str, escape: str) -> bool:
    """Whether a pattern is readable with this escape character (SQL's rule)."""
    index = 0
    while index < len(pattern):
        if pattern[index] == escape:
            if index + 1 == len(pattern) or pattern[index + 1] not in ("%", "_", escape):
                return False
            index += 1
        index += 1
    return True


@settings(max_examples=300, deadline=None)
@given(pattern=patterns, value=values)
def test_escape_makes_the_next_character_literal(pattern: str, value: str) -> None:
    if not _escaped(pattern, "!"):
        with pytest.raises(PatternError):
            LikePattern(pattern, "!")
        return
    compiled = LikePattern(pattern, "!")
    expected = reference(pattern, value, escape="!")
    assert compiled.match(value) == expected
    assert bool(compiled.match_array(np.array([value]))[0]) == expected


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(alphabet="aAßİK%_", max_size=6), value=st.text(alphabet="aAßSsİiK\u212a", max_size=8))
def test_ilike_is_like_of_the_lower_cases(pattern: str, value: str) -> None:
    folded = LikePattern(pattern, fold=True)
    lowered = np.strings.lower(np.array([value]).astype("<U40"))
    assert bool(folded.match_array(lowered)[0]) == reference(pattern.lower(), value.lower())


@pytest.mark.parametrize(
    "value",
    ["a" * 50, "a" * 10_000, "a" * 9_999 + "b", ("ab" * 5_000)[:-1] + "b", "b" * 10_000],
    ids=["50 a", "10k a", "10k a then b", "10k ab", "10k b"],
)
@pytest.mark.parametrize(
    "pattern", [PATHOLOGICAL, PATHOLOGICAL + "%", "%a_a%a_a%a_a%a_a%b", "%" + "a_" * 40 + "b%"]
)
def test_the_pathological_pattern_takes_microseconds_not_seconds(pattern: str, value: str) -> None:
    expected = reference(pattern, value)
    compiled = LikePattern(pattern)
    start = time.thread_time()  # CPU seconds: the work, not the wait for a core on a shared machine
    one = [compiled.match(value) for _ in range(10)]
    column = compiled.match_array(np.array([value] * 20))
    elapsed = time.thread_time() - start
    assert elapsed < 0.5, f"{elapsed:.3f} s for 30 values of {len(value)} characters"
    assert one == [expected] * 10
    assert column.tolist() == [expected] * 20


def test_a_filter_with_the_pathological_pattern_judges_long_values_in_well_under_a_second() -> None:
    compiled = compile_filter(f"object_id LIKE '{PATHOLOGICAL}'")
    field = catalogue().resolve("object_id")
    assert field is not None
    long_values = ["a" * 10_000] * 100 + ["a" * 9_999 + "b"] * 100

    class Long:
        memo: dict[str, Any] = {}

        def __len__(self) -> int:
            return len(long_values)

        def column(self, wanted: Any) -> Vec:
            assert wanted is field
            return Vec.strings(list(long_values))

    columns = Long()
    start = time.thread_time()  # CPU seconds, as above
    verdicts = compiled.evaluate(columns)
    assert time.thread_time() - start < 0.5
    assert verdicts.tolist() == [False] * 100 + [True] * 100


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    return synthetic_alerts(300)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("object_id LIKE 'ZTF%'", lambda a: a.object_id.startswith("ZTF")),
        ("object_id NOT LIKE 'ZTF%'", lambda a: not a.object_id.startswith("ZTF")),
        ("object_id NOT ILIKE 'ztf%'", lambda a: not a.object_id.lower().startswith("ztf")),
        ("NOT object_id LIKE 'ZTF%'", lambda a: not a.object_id.startswith("ZTF")),
        ("object_id LIKE '%!%%' ESCAPE '!'", lambda a: "%" in a.object_id),
        ("object_id || '_x' LIKE '%#_x' ESCAPE '#'", lambda a: True),
        ("object_id || 'ax' LIKE '%#_x' ESCAPE '#'", lambda a: False),
        ("object_id NOT LIKE '%Z_F%' ESCAPE '!'", lambda a: re.search("Z.F", a.object_id) is None),
        ("UPPER(object_id) LIKE LOWER('ZTF') || '%'", None),  # refused below: the pattern is a constant
    ],
)
def test_not_like_and_escape_in_filters(alerts: list[Alert], expression: str, expected: Any) -> None:
    if expected is None:
        with pytest.raises(FilterSyntaxError, match="LIKE takes a string pattern"):
            compile_filter(expression)
        return
    verdicts = compile_filter(expression).evaluate(BatchColumns(alerts)).tolist()
    assert verdicts == [bool(expected(a)) for a in alerts]


@pytest.mark.parametrize(
    ("expression", "column", "words"),
    [
        ("object_id LIKE 'a!b' ESCAPE '!'", 16, "'!' escapes only '%', '_' or itself"),
        ("object_id LIKE 'ab!' ESCAPE '!'", 16, "'!' escapes only '%', '_' or itself"),
        ("object_id LIKE 'ab' ESCAPE '!!'", 28, "ESCAPE takes one character"),
    ],
)
def test_a_bad_escape_is_refused_where_it_is(expression: str, column: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        compile_filter(expression)
    assert words in caught.value.message
    assert (caught.value.line, caught.value.column) == (1, column)


def test_upper_and_lower_are_never_cut_short() -> None:
    field = catalogue().resolve("object_id")

    class Words:
        def __len__(self) -> int:
            return 2

        def column(self, wanted: Any) -> Vec:
            return Vec.strings(["straße", "İİ"])

    assert field is not None
    assert compile_filter("UPPER(object_id) = 'STRASSE'").evaluate(Words()).tolist() == [True, False]
    assert compile_filter("LOWER(object_id) = 'i̇i̇'").evaluate(Words()).tolist() == [False, True]
    # x ILIKE p is LOWER(x) LIKE LOWER(p): 'İ' is 'i' and a combining dot, two characters.
    assert compile_filter("object_id ILIKE 'İi_'").evaluate(Words()).tolist() == [False, True]
    assert compile_filter("object_id ILIKE 'STRAßE'").evaluate(Words()).tolist() == [True, False]
