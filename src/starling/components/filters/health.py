"""How a user's filter is faring: its failures and overruns counted, and a pause once it keeps failing.

A filter whose evaluation raises, or goes past its time budget, matches nothing in that batch and the
others go on (``starling.adql.plan``). Here that is counted, with the last reason; after
``max_failing_batches`` such batches in a row the filter is paused, with its reason, until its
config changes (which builds it anew). Its counters say all of it, in ``/status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starling.adql.plan import Failure

log = logging.getLogger(__name__)


class FilterHealth:
    def __init__(self, name: str, max_failing_batches: int, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.max_failing_batches = max_failing_batches
        self.clock = clock
        self.batches = 0
        self.errors = 0  # batches in which its evaluation raised
        self.overruns = 0  # batches in which it went past its time budget
        self.in_a_row = 0  # failing batches since the last one judged
        self.last_failure: str | None = None
        self.paused_reason: str | None = None
        self.paused_at: float | None = None
        self.seconds = 0.0  # spent judging, over all batches
        self.slowest_s = 0.0

    @property
    def paused(self) -> bool:
        return self.paused_reason is not None

    def record(self, failure: Failure | None, seconds: float) -> None:
        """One batch: judged (failure None), or failed with its reason."""
        self.batches += 1
        self.seconds += seconds
        if seconds > self.slowest_s:
            self.slowest_s = seconds
        if failure is None:
            self.in_a_row = 0
            return
        if failure.overrun:
            self.overruns += 1
        else:
            self.errors += 1
        self.in_a_row += 1
        self.last_failure = failure.reason
        # Counted, not logged at each batch: one user's failing filters must not flood the stage's log.
        log.debug("filter %s matched nothing in this batch: %s", self.name, failure.reason)
        if self.in_a_row >= self.max_failing_batches and not self.paused:
            self.paused_reason = f"paused after {self.in_a_row} failing batches in a row: {failure.reason}"
            self.paused_at = self.clock()
            log.warning("filter %s %s", self.name, self.paused_reason)

    def counters(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "overruns": self.overruns,
            "failing_batches_in_a_row": self.in_a_row,
            "last_failure": self.last_failure,
            "paused_reason": self.paused_reason,
            "paused_at": self.paused_at,
            "evaluation_s": round(self.seconds, 6),
            "slowest_batch_s": round(self.slowest_s, 6),
        }
