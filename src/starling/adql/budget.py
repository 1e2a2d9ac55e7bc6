"""A time budget for judging a batch: a filter past it is stopped between two column operations.

Python cannot stop a computation from outside, but a compiled filter is a tree of column
operations, each bounded by the batch's size and the expression's (LIKE included: it is linear,
``like.py``). So the compiled nodes look at the clock before each operation they compute (and LIKE
between chunks of values), and raise ``OverBudgetError`` once the deadline has passed: a filter overruns
its budget by at most one operation, never by minutes. The deadline is an attribute of the batch's
columns, set around one evaluation by ``time_budget``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starling.errors import StarlingError


class OverBudgetError(StarlingError):
    """An evaluation went past its time budget (the batch is judged without it)."""


def check_time(columns: Any) -> None:
    """Raises OverBudgetError if the deadline set on the columns has passed."""
    deadline = getattr(columns, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise OverBudgetError("over its time budget: stopped")


@contextmanager
def time_budget(columns: Any, seconds: float | None) -> Iterator[None]:
    """Evaluations on ``columns`` within the block stop after ``seconds`` (None: no limit)."""
    previous = getattr(columns, "deadline", None)
    try:
        columns.deadline = None if seconds is None else time.monotonic() + seconds
    except AttributeError:  # columns that take no attribute: measured afterwards only
        yield
        return
    try:
        yield
    finally:
        columns.deadline = previous
