"""A filter's matches kept as positions in the batch: the alerts are picked out only when read.

A stage with a thousand live filters judges them as a few (k, n) arrays of verdicts; making every
filter's matches into a list of alerts at once would cost more than the judging. ``Picked`` keeps its
row of verdicts and the count, and builds the list the first time a sink, a delivery or the envelope
iterates it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence
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


def names_by_alert(alerts: Sequence[Alert], matches: Mapping[str, Sequence[Alert]]) -> list[list[str]]:
    """For each alert of the batch, in order, the names whose matches hold it (in ``matches``' order).

    What an envelope carries. A thousand filters that match a quarter of a batch each are a quarter of a
    million (alert, filter) pairs: turned around in one numpy pass over their rows of verdicts (a ``Picked``
    over these alerts gives its row as it is; a list, by the alerts' positions), not a Python step per pair.
    """
    if not matches:
        return [[] for _ in alerts]
    count = len(alerts)
    position: dict[int, int] | None = None
    same: dict[int, bool] = {}  # a Picked's array of alerts, by id: is it these alerts, in this order?
    rows = np.zeros((len(matches), count), dtype=bool)
    for index, matched in enumerate(matches.values()):
        if isinstance(matched, Picked):
            objects = matched._objects
            if id(objects) not in same:
                same[id(objects)] = len(objects) == count and all(map(operator.is_, objects, alerts))
            if same[id(objects)]:
                rows[index] = matched._verdicts
                continue
        if position is None:
            position = {id(alert): i for i, alert in enumerate(alerts)}
        at = [p for alert in matched if (p := position.get(id(alert))) is not None]
        rows[index, at] = True
    names = np.empty(len(matches), dtype=object)
    names[:] = list(matches)
    alert_of, name_of = np.nonzero(rows.T)  # by alert, then in the names' order
    bounds = np.searchsorted(alert_of, np.arange(count + 1)).tolist()
    return [names[name_of[bounds[i] : bounds[i + 1]]].tolist() for i in range(count)]
