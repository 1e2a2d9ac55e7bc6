"""The values a filter expression computes over a batch: columns with SQL's NULL, and three-valued truth.

A column is a numpy array (numbers, or fixed-width unicode strings) plus a NULL mask (a missing
magnitude, an annotation an alert lacks). Constants stay 0-dimensional and broadcast. Conditions
follow SQL: a comparison with NULL is unknown, ``NOT unknown`` is unknown, and a filter keeps only
the alerts for which it is true.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
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


class Truth:
    """Three-valued: where the condition is true, and where it is false (neither: unknown).

    Most conditions have no unknowns (no NULL met): their ``false`` is ``~true``, made only if asked
    for (a NOT, a mix with unknowns), so an AND of comparisons costs one operation per comparison.
    """

    __slots__ = ("_false", "true")

    def __init__(self, true: BoolArray | np.bool_, false: BoolArray | np.bool_ | None = None) -> None:
        self.true = true
        self._false = false  # None: wherever not true (no unknowns)

    @property
    def false(self) -> BoolArray | np.bool_:
        if self._false is None:
            self._false = ~self.true
        return self._false

    @staticmethod
    def of(condition: Any, null: BoolArray | np.bool_) -> Truth:
        if isinstance(null, np.bool_) and not null:  # nothing missing: the common case
            return Truth(condition)
        known = ~null
        return Truth(condition & known, ~condition & known)

    def negate(self) -> Truth:
        if self._false is None:
            return Truth(~self.true)
        return Truth(self._false, self.true)

    def both(self, other: Truth) -> Truth:
        if self._false is None and other._false is None:
            return Truth(self.true & other.true)
        return Truth(self.true & other.true, self.false | other.false)

    def either(self, other: Truth) -> Truth:
        if self._false is None and other._false is None:
            return Truth(self.true | other.true)
        return Truth(self.true | other.true, self.false & other.false)

    def unknown(self) -> BoolArray | np.bool_:
        if self._false is None:
            return np.zeros_like(self.true)
        return ~(self.true | self._false)


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


# -- exact comparisons and arithmetic on whole numbers ----------------------------------------------

_TWO_53 = 2**53  # whole numbers up to it are doubles exactly
_TWO_63 = 2.0**63  # the first real beyond int64 (int64's largest is 2**63 - 1)
_SWAPPED: dict[Callable[[Any, Any], Any], Callable[[Any, Any], Any]] = {
    operator.lt: operator.gt,
    operator.le: operator.ge,
    operator.gt: operator.lt,
    operator.ge: operator.le,
}


def _kind(values: Any) -> str:
    return str(getattr(values, "dtype", np.asarray(values).dtype).kind)


def compare(op: Callable[[Any, Any], Any], x: Any, y: Any) -> Any:
    """``op(x, y)`` elementwise, exact between whole numbers and reals.

    numpy compares an int64 with a float64 by turning the int64 into a float64, so ids beyond 2**53
    compare wrongly (and a real beyond int64 cannot be one): a whole number and a real are compared
    here as the numbers they are.
    """
    kx, ky = _kind(x), _kind(y)
    if kx in "iu" and ky == "f":
        return _whole_with_real(op, x, y)
    if kx == "f" and ky in "iu":
        return _whole_with_real(_SWAPPED.get(op, op), y, x)
    if kx == ky == "U" and op in (operator.eq, operator.ne):
        return _strings_equal(op, np.asarray(x), np.asarray(y))
    return op(x, y)


def _strings_equal(op: Callable[[Any, Any], Any], x: Any, y: Any) -> Any:
    """``x == y`` (or ``!=``) for strings; where k filters' strings meet n alerts' (a (k, n) result), as
    codes of the distinct strings: comparing two strings costs far more than two integers."""
    if math.prod(np.broadcast_shapes(x.shape, y.shape)) < 4 * (x.size + y.size):
        return op(x, y)  # a column against a constant, or two columns: as they are
    _, codes = np.unique(np.concatenate([x.ravel(), y.ravel()]), return_inverse=True)
    return op(codes[: x.size].reshape(x.shape), codes[x.size :].reshape(y.shape))


def _whole_with_real(op: Callable[[Any, Any], Any], whole: Any, real: Any) -> Any:
    """The order of each whole number against each real (-1, 0, 1), then ``op(order, 0)``."""
    held = np.asarray(whole)
    if held.size == 0 or (held.max() <= _TWO_53 and held.min() >= -_TWO_53):
        return op(held.astype(float), real)  # each is a double exactly: compared as the numbers they are
    real = np.asarray(real, dtype=float)
    above, below = real >= _TWO_63, real < -_TWO_63  # beyond every int64 (an infinity too)
    inside = np.where(above | below | np.isnan(real), 0.0, real)
    floor = np.floor(inside)
    whole_part = floor.astype(np.int64)  # exact: |floor| < 2**63
    fraction = inside - floor  # exact, in [0, 1)
    order = (whole > whole_part).astype(np.int8) - (whole < whole_part).astype(np.int8)
    order = np.where(order == 0, -(fraction > 0).astype(np.int8), order)  # whole == floor < real
    order = np.where(above, -1, np.where(below, 1, order))
    return op(order, 0)


def _overflowing(op: Callable[[Any, Any], Any], x: Any, y: Any, result: Any) -> Any:
    """Where a whole-number result wrapped around (int64 overflow)."""
    if op is operator.add:
        return ((x ^ result) & (y ^ result)) < 0
    if op is operator.sub:
        return ((x ^ y) & (x ^ result)) < 0
    exact = np.multiply(as_float(x), as_float(y))  # a wrapped product is 2**64 or more away from it
    return np.abs(np.asarray(result, dtype=float) - exact) > 1.0 + np.abs(exact) * 2.0**-40


def arithmetic(op: Callable[[Any, Any], Any], x: Any, y: Any) -> Any:
    """``op(x, y)`` for + - *: whole numbers stay exact within int64, and a result beyond it is a
    real (never wrapped around)."""
    x, y = np.asarray(x), np.asarray(y)
    result = op(x, y)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        over = _overflowing(op, x, y, result)
        if np.any(over):
            result = np.where(over, op(as_float(x), as_float(y)), result)
    return result


def modulo(x: Any, y: Any) -> tuple[Any, Any]:
    """SQL's MOD (the sign of the dividend); MOD(x, 0) is NULL."""
    x, y = np.asarray(x), np.asarray(y)
    return np.fmod(x, y), (y == 0) if y.dtype.kind in "iu" else np.bool_(False)


def negate(x: Any) -> Any:
    """-x; the negation of int64's smallest is a real (2**63), not itself."""
    x = np.asarray(x)
    if x.dtype.kind == "i" and np.any(x == _INT64.min):
        return -as_float(x)
    return -x


def change_case(values: Any, upper: bool) -> Any:
    """UPPER or LOWER, never cut short: 'ß' is 'SS' and 'İ' is 'i̇', longer than the column's width."""
    values = np.asarray(values)
    width = max(values.dtype.itemsize // 4, 1)
    wide = values.astype(f"<U{width * 3}")  # no character changes case into more than three
    changed = np.strings.upper(wide) if upper else np.strings.lower(wide)
    longest = int(np.max(np.strings.str_len(changed), initial=1))
    return changed.astype(f"<U{max(longest, 1)}")
