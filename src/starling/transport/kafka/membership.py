"""Whether a stage's consumer has lost its group and not found its way back.

When the broker that coordinates a consumer group restarts, the group's members time out and librdkafka
rejoins them. Now and then a member stays stuck instead, its request to the coordinator queued and never
sent (seen here once in a clean-clone test run; reported as confluentinc/librdkafka#3082 and #2944): the
worker then holds no partition forever while its input grows. A member that lost its partitions (a
session timeout, not a rebalance that handed them to another replica) and has none back within
``rejoin_after_s`` is taken for stuck: the worker closes its consumer and subscribes anew, which rejoins
the group from the start. Nothing is lost: offsets live on the broker and only committed work counts.
"""

from __future__ import annotations

import time

REJOIN_AFTER_S = 60.0


class Membership:
    def __init__(self, rejoin_after_s: float = REJOIN_AFTER_S) -> None:
        self.rejoin_after_s = rejoin_after_s
        self._lost_at: float | None = None
        self.rejoins = 0

    def lost(self) -> None:
        """The group took the partitions away without a rebalance (the member timed out)."""
        if self._lost_at is None:
            self._lost_at = time.monotonic()

    def assigned(self) -> None:
        """The member is in the group again (partitions handed to it, or none to hand)."""
        self._lost_at = None

    def stuck(self) -> bool:
        return self._lost_at is not None and time.monotonic() - self._lost_at > self.rejoin_after_s

    def resubscribed(self) -> None:
        """A new consumer was made: watch it the same way until it is assigned."""
        self.rejoins += 1
        self._lost_at = time.monotonic()
