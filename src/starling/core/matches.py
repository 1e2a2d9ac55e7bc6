"""A filter's matches kept as positions in the batch: the alerts are picked out only when read.

A stage with a thousand live filters judges them as a few (k, n) arrays of verdicts; making every
filter's matches into a list of alerts at once would cost more than the judging. ``Picked`` keeps its
row of verdicts and the count, and builds the list the first time a sink, a delivery or the envelope
iterates it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from starling.alert.model import Alert


class Picked(Sequence[Alert]):
    """The alerts of ``objects`` (the batch, as an array of objects) where ``verdicts`` is true."""

    __slots__ = ("_alerts", "_count", "_objects", "_verdicts")

    def __init__(self, objects: npt.NDArray[Any], verdicts: npt.NDArray[np.bool_], count: int) -> None:
        self._objects = objects
        self._verdicts = verdicts
        self._count = count
        self._alerts: list[Alert] | None = None

    def alerts(self) -> list[Alert]:
        """The matches as a list, in batch order (made once)."""
        if self._alerts is None:
            self._alerts = self._objects[self._verdicts].tolist() if self._count else []
        return self._alerts

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Alert]:
        return iter(self.alerts())

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> list[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | list[Alert]:
        return self.alerts()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self.alerts() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, as a list is

    def __repr__(self) -> str:
        return f"Picked({self.alerts()!r})"
