"""A cap on how many matches a filter passes on, per visit or per minute.

A filter that is too broad (``mag < 25``) must not flood its outputs: past the cap, matches are held
back and counted, and the filter reports that it hit the cap. A visit is one exposure: the alerts
that share a survey and a detection time. Each replica of the filter stage keeps its own count.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from starling.alert.model import Alert

_VISITS_REMEMBERED = 64


class RateCap:
    def __init__(
        self,
        per_visit: int | None,
        per_minute: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_visit = per_visit
        self.per_minute = per_minute
        # Whether it holds anything back ever (a filter with no cap passes its matches on as they are).
        self.limited = per_visit is not None or per_minute is not None
        self.clock = clock
        self.held_back = 0
        self._visits: OrderedDict[tuple[str, float], int] = OrderedDict()
        self._minute_start = clock()
        self._minute_count = 0

    @property
    def hit(self) -> bool:
        return self.held_back > 0

    def admit(self, matches: Sequence[Alert]) -> list[Alert]:
        if not self.limited:
            return list(matches)
        now = self.clock()
        if now - self._minute_start >= 60.0:
            self._minute_start, self._minute_count = now, 0
        admitted = []
        for alert in matches:
            visit = (alert.survey, round(alert.mjd, 6))
            in_visit = self._visits.get(visit, 0)
            if (self.per_visit is not None and in_visit >= self.per_visit) or (
                self.per_minute is not None and self._minute_count >= self.per_minute
            ):
                self.held_back += 1
                continue
            self._visits[visit] = in_visit + 1
            self._visits.move_to_end(visit)
            self._minute_count += 1
            admitted.append(alert)
        while len(self._visits) > _VISITS_REMEMBERED:
            self._visits.popitem(last=False)
        return admitted
