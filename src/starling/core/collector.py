"""Python's cyclic garbage collector, tuned for a stage's work.

A stage makes thousands of short-lived objects an alert (decoded records, history rows, annotations) and
almost no reference cycles: reference counting frees them. With Python's default thresholds (700, 10, 10)
the collector runs every 700 net allocations, so it walks the young objects many times a batch and the
whole heap every few batches, for nothing: on the real alerts it was 14% of the annotated pipeline's time
(ZTF) and 18% (Rubin). Raised thresholds keep the collector for what it is for (the rare cycle), at the
cost of a little memory held between its runs.
"""

from __future__ import annotations

import gc

# Collections of the youngest generation after this many net allocations; of the older ones after this
# many of the younger one's. Python's default: (700, 10, 10).
STAGE_THRESHOLDS = (50_000, 20, 100)


def tune_for_stage() -> None:
    """Set the thresholds for this process (``Chain`` does, when a stage's chain is made)."""
    gc.set_threshold(*STAGE_THRESHOLDS)
