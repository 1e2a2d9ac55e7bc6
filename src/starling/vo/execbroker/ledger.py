"""What is held of the broker's capacity, and when: offers until they expire, sessions until they end.

The capacity is real (the machine's cores and memory less what the chain's stages hold, or a Kubernetes
namespace's quota: the caller says). An offer holds what it offers, over its schedule, from the moment
it is made until it expires, so that two users asking for one narrow window get one offer between them.
Accepting an offer keeps its hold (and its siblings' are let go); a session that is cancelled, fails or
completes lets its hold go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Hold:
    """``cores`` and ``memory_gib`` held from ``start`` to ``end`` for one session (an offer until
    ``expires``; an accepted session has none)."""

    session: str
    offerset: str
    owner: str
    cores: int
    memory_gib: int
    start: dt.datetime
    end: dt.datetime
    expires: dt.datetime | None

    def active(self, now: dt.datetime) -> bool:
        return self.expires is None or now < self.expires

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class Capacity:
    cores: int
    memory_gib: int


class Ledger:
    def __init__(self, capacity: Capacity, holds: list[Hold] | None = None) -> None:
        self.capacity = capacity
        self.holds: dict[str, Hold] = {hold.session: hold for hold in holds or []}

    def free(self, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> tuple[int, int]:
        """The cores and GiB free over the whole of ``[start, end)``: capacity less the most held at
        once in it (holds only change where one begins, so those points and ``start`` are checked)."""
        holding = [h for h in self.holds.values() if h.active(now) and h.overlaps(start, end)]
        points = [start, *(h.start for h in holding if h.start > start)]
        cores = memory = 0
        for point in points:
            at = [h for h in holding if h.start <= point < h.end]
            cores = max(cores, sum(h.cores for h in at))
            memory = max(memory, sum(h.memory_gib for h in at))
        return self.capacity.cores - cores, self.capacity.memory_gib - memory

    def hold(self, hold: Hold) -> None:
        self.holds[hold.session] = hold

    def keep(self, session: str) -> None:
        """An accepted offer: its hold no longer expires."""
        hold = self.holds.get(session)
        if hold is not None:
            self.holds[session] = Hold(**{**hold.__dict__, "expires": None})

    def release(self, session: str) -> None:
        self.holds.pop(session, None)

    def forget_expired(self, now: dt.datetime) -> list[str]:
        """Drop the holds of offers that expired (and of sessions past their end); the sessions they were."""
        gone = [s for s, h in self.holds.items() if not h.active(now) or h.end <= now]
        for session in gone:
            del self.holds[session]
        return gone
