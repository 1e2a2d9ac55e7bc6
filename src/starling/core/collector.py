"""Python's cyclic garbage collector, tuned for a stage's work.

A stage makes thousands of short-lived objects an alert (decoded records, history rows, annotations) and
almost no reference cycles: reference counting frees them. With Python's default thresholds (700, 10, 10)
the collector runs every 700 net allocations, so it walks the young objects many times a batch and the
whole heap every few batches, for nothing: on the real alerts it was 14% of the annotated pipeline's time
(ZTF) and 18% (Rubin). Raised thresholds keep the collector for what it is for (the rare cycle), at the
cost of a little memory held between its runs.

Only while the embedded runtime runs: the process gets its own thresholds back after. The Kafka workers'
processes keep Python's defaults for now: with the thresholds raised in every process that made a chain, a
test of many users' live changes failed in full test runs (changes not live in every replica within 15 s),
and the cause is not yet known.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Collections of the youngest generation after this many net allocations; of the older ones after this
# many of the younger one's. Python's default: (700, 10, 10).
STAGE_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def stage_collector() -> Iterator[None]:
    """The thresholds while a stage runs in this process (the embedded runtime); the previous ones after."""
    previous = gc.get_threshold()
    gc.set_threshold(*STAGE_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
