"""The values a filter expression computes over a batch: columns with SQL's NULL, and three-valued truth.

A column is a numpy array (numbers, or fixed-width unicode strings) plus a NULL mask (a missing
magnitude, an annotation an alert lacks). Constants stay 0-dimensional and broadcast. Conditions
follow SQL: a comparison with NULL is unknown, ``NOT unknown`` is unknown, and a filter keeps only
the alerts for which it is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Kind = Literal["number", "string"]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Vec:
    values: npt.NDArray[Any]
    null: BoolArray | np.bool_
    kind: Kind

    @staticmethod
    def constant(value: float | int | str | None, kind: Kind) -> Vec:
        if value is None:
            return Vec(np.array(np.nan if kind == "number" else ""), np.bool_(True), kind)
        return Vec(np.array(value), np.bool_(False), kind)

    @staticmethod
    def numbers(values: list[Any], integer: bool = False) -> Vec:
        """A column from Python values, None for NULL; integers stay exact (ids beyond 2**53).

        A column without NULL gets a scalar False mask, so the common case costs no mask operations.
        A value that is no finite number (NaN, an infinity, a string in a numeric field) is NULL.
        """
        if integer:
            try:
                if None in values:
                    null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
                    array = np.array([0 if v is None else v for v in values], dtype=np.int64)
                    return Vec(array, null, "number")
                return Vec(np.array(values, dtype=np.int64), np.bool_(False), "number")
            except (TypeError, ValueError, OverflowError):  # NaN, 1e308, 2**70, a string ...
                return Vec.numbers([_integer(v) for v in values], integer=True)
        try:
            array = np.array(values, dtype=float)  # None becomes NaN
        except (TypeError, ValueError, OverflowError):
            array = np.array([_real(v) for v in values], dtype=float)
        finite = np.isfinite(array)
        if finite.all():
            return Vec(array, np.bool_(False), "number")
        return Vec(np.where(finite, array, np.nan), ~finite, "number")

    @staticmethod
    def strings(values: list[str | None]) -> Vec:
        """Fixed-width unicode columns: numpy compares them in C (object arrays compare in Python)."""
        if None in values:
            null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            return Vec(np.array(["" if v is None else v for v in values], dtype=str), null, "string")
        return Vec(np.array(values, dtype=str), np.bool_(False), "string")


@dataclass(frozen=True, slots=True)
class Truth:
    """Three-valued: where the condition is true, and where it is false (neither: unknown)."""

    true: BoolArray | np.bool_
    false: BoolArray | np.bool_

    @staticmethod
    def of(condition: Any, null: BoolArray | np.bool_) -> Truth:
        if isinstance(null, np.bool_) and not null:  # nothing missing: the common case, two fewer ops
            return Truth(condition, ~condition)
        known = ~null
        return Truth(condition & known, ~condition & known)

    def negate(self) -> Truth:
        return Truth(self.false, self.true)

    def both(self, other: Truth) -> Truth:
        return Truth(self.true & other.true, self.false | other.false)

    def either(self, other: Truth) -> Truth:
        return Truth(self.true | other.true, self.false & other.false)

    def unknown(self) -> BoolArray | np.bool_:
        return ~(self.true | self.false)


_INT64 = np.iinfo(np.int64)


def _integer(value: Any) -> int | None:
    """A whole number that fits the column, else None (NULL)."""
    if isinstance(value, (int, np.integer)):
        return int(value) if _INT64.min <= value <= _INT64.max else None
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return _integer(int(value))
    return None


def _real(value: Any) -> float:
    """A number as a float, NaN (NULL) for what is not one."""
    try:
        return float(value) if not isinstance(value, (str, bytes)) else float("nan")
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def as_float(values: Any) -> Any:
    """Whole-number columns as floats, for the maths; strings and other columns as they are."""
    return values.astype(float) if isinstance(values, np.ndarray) and values.dtype != object else values


def number_column(values: Any, null: BoolArray | np.bool_) -> Vec:
    """A numeric result; NaN and infinities from the maths (sqrt(-1), 1/0) read as NULL."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        null = null | ~np.isfinite(values)
    return Vec(np.asarray(values), null, "number")
