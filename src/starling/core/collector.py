"""Python's cyclic garbage collector, tuned for a stage's work.

A stage makes thousands of short-lived objects an alert (decoded records, history rows, annotations) and
almost no reference cycles: reference counting frees them. With Python's default thresholds (700, 10, 10)
the collector runs every 700 net allocations, so it walks the young objects many times a batch and the
whole heap every few batches, for nothing: on the real alerts it was 14% of the annotated pipeline's time
(ZTF) and 18% (Rubin). Raised thresholds keep the collector for what it is for (the rare cycle), at the
cost of a little memory held between its runs.

Only while a stage runs: the embedded runtime gives the process its own thresholds back after its run (a
process that does more, the tests or a command that goes on, would otherwise collect its cycles late, Kafka
clients with their threads among them); a Kafka worker's process is its stage's and nothing else, and keeps
them for its life.

Work charged to someone by its CPU time (a user's filter, against its budget) runs with the collector
paused (``collector_paused``): a full collection that falls inside it is the process's, not the filter's.
"""

from __future__ import annotations

import gc
import threading
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


_pause_lock = threading.Lock()
_pauses = 0  # blocks in any thread inside ``collector_paused`` now
_enabled_before = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection in any thread of the process inside the block; the collector runs at its next
    allocation after (an explicit ``gc.collect()`` still runs).

    For work charged to someone by its CPU time (a user's filter against its budget): a full collection
    walks the whole process's heap, 9 ms and more in a worker, more than a small batch's share of a user,
    and it is nobody's work in particular. Nested and concurrent blocks are counted, so the collector is
    enabled again only when the last one ends, and only if it was enabled before the first. A block lasts
    one evaluation, bounded by the filter's budget (60 s at most, most take milliseconds): the garbage made
    meanwhile waits for it."""
    global _pauses, _enabled_before
    with _pause_lock:
        if _pauses == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()
