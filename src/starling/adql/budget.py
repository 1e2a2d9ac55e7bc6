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


def cpu_clock() -> float:
    """The clock budgets are counted on: the judging thread's CPU time. A filter is charged for what it
    computes, never for the time its process waited for a core (a loaded machine costs no verdicts)."""
    return time.thread_time()


def check_time(columns: Any) -> None:
    """Raises OverBudgetError if the deadline set on the columns has passed."""
    deadline = getattr(columns, "deadline", None)
    if deadline is not None and cpu_clock() > deadline:
        raise OverBudgetError("over its time budget: stopped")


@contextmanager
def time_budget(columns: Any, seconds: float | None) -> Iterator[None]:
    """Evaluations on ``columns`` within the block stop after ``seconds`` (None: no limit)."""
    previous = getattr(columns, "deadline", None)
    try:
        columns.deadline = None if seconds is None else cpu_clock() + seconds
    except AttributeError:  # columns that take no attribute: measured afterwards only
        yield
        return
    try:
        yield
    finally:
        columns.deadline = previous


SHARE_SPENT = "its owner's share of this batch's time is spent: not judged in this batch"


class OwnerShares:
    """Each owner's share of one batch's time: the seconds all of its filters may take together.

    A filter's own budget bounds one filter; a share bounds a user, so that a user with many heavy
    filters (each within its budget) cannot take the stage from the others. Like budgets, shares are
    CPU time (``cpu_clock``). An owner with no share (the operator) is bounded by its filters' budgets
    alone. Time spent on a group of same-shape
    filters of several owners, computed once for all, counts for each of them.
    """

    def __init__(self, owners: dict[str, str], shares_s: dict[str, float]) -> None:
        self._owners = owners  # filter -> owner
        self._left = dict(shares_s)  # owner -> seconds left in this batch

    def _bounded(self, names: list[str]) -> set[str]:
        if not self._left:  # no owner has a share (operators' filters only)
            return set()
        return {self._owners[n] for n in names if self._owners.get(n) in self._left}

    def spent(self, names: list[str]) -> set[str]:
        """Those of ``names`` whose owner has no time left in this batch."""
        if not self._left:
            return set()
        return {n for n in names if self._left.get(self._owners.get(n, ""), 1.0) <= 0.0}

    def left(self, names: list[str]) -> float | None:
        """The time left to a group of one owner's filters (None: unbounded, or several owners)."""
        if not self._left:  # no owner has a share (operators' filters only)
            return None
        owners = {self._owners.get(n) for n in names}
        if len(owners) != 1 or not self._bounded(names):
            return None
        return self._left[owners.pop() or ""]

    def spend(self, names: list[str], seconds: float) -> None:
        for owner in self._bounded(names):
            self._left[owner] -= seconds
