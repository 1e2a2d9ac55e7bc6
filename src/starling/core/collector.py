"""Python's cyclic garbage collector, tuned for a stage's work.

A stage makes thousands of short-lived objects an alert (decoded records, history rows, annotations) and
almost no reference cycles: reference counting frees them. With Python's default thresholds (700, 10, 10)
the collector runs every 700 net allocations, so it walks the young objects many times a batch and the
whole heap every few batches, for nothing: on the real alerts it was 14% of the annotated pipeline's time
(ZTF) and 18% (Rubin). Raised thresholds keep the collector for what it is for (the rare cycle), at the
cost of a little memory held between its runs.

Only while a stage runs: a process that does more (the tests, a command that runs a pipeline and goes on)
gets its own thresholds back, or its cycles (clients of Kafka among them, with their threads) would be
collected late.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Collections of the youngest generation after this many net allocations; of the older ones after this
# many of the younger one's. Python's default: (700, 10, 10).
STAGE_THRESHOLDS = (50_000, 20, 100)


def tune_for_stage() -> None:
    """For a process that is a stage's worker and nothing else: the thresholds for the rest of its life."""
    gc.set_threshold(*STAGE_THRESHOLDS)


@contextmanager
def stage_collector() -> Iterator[None]:
    """The thresholds while a stage runs in this process (the embedded runtime); the previous ones after."""
    previous = gc.get_threshold()
    gc.set_threshold(*STAGE_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
