"""One webhook endpoint's state: its queue (a bounded window in memory, the rest in the outbox), its
back-off and its circuit breaker; and the lanes that keep endpoints out of each other's way.

An endpoint is one output of one filter (filter name, URL): each user's outputs have their own queue,
so no endpoint waits behind another's. Each is of a kind: ``healthy`` (it has taken a delivery and
answers quickly), ``new`` (not yet seen to work) or ``bad`` (failing, or slower than ``SLOW_S``).
:class:`Lanes` keeps one sender for healthy endpoints whatever happens: new and bad endpoints together
hold at most all senders but one, and bad ones at most half of them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from starling.components.sinks.deliver.breaker import CircuitBreaker
from starling.components.sinks.deliver.outbox import Delivery

Kind = Literal["healthy", "new", "bad"]
SLOW_S = 1.0  # an endpoint that takes longer to answer is bad until it answers faster
UNPROVEN_WINDOW = 10  # deliveries in memory for an endpoint not healthy: it takes them slowly if at all


@dataclass(slots=True)
class Endpoint:
    key: tuple[str, str]
    breaker: CircuitBreaker
    window: deque[Delivery] = field(default_factory=deque)  # the first deliveries queued, in turn order
    pending: int = 0  # queued deliveries, in the window and on disk (the one in flight included)
    waiting: int = 0  # deliveries whose attempts are spent, waiting for redelivery
    cursor: int = 0  # the last turn taken into the window: queued rows after it are on disk only
    lane: Kind | None = None  # while a sender has its head in flight: the lane it holds
    proven: bool = False  # it has taken a delivery
    slow: bool = False  # its last answer took longer than SLOW_S
    not_before: float = 0.0  # back-off: no attempt before this time
    head_attempts: int = 0
    attempts: int = 0
    last_failure: str | None = None

    @property
    def filter(self) -> str:
        return self.key[0]

    @property
    def failing(self) -> bool:
        return self.breaker.failures > 0

    @property
    def kind(self) -> Kind:
        if self.failing or self.slow:
            return "bad"
        return "healthy" if self.proven else "new"

    def health(self) -> tuple[int, bool, bool]:
        """What a restart should know of it: failures in a row, slow, proven."""
        return (self.breaker.failures, self.slow, self.proven)

    def ready(self, now: float) -> bool:
        return self.lane is None and self.pending > 0 and now >= self.not_before and self.breaker.allows(now)

    def due(self) -> float:
        """When it could be taken next (ignoring whether a sender is free)."""
        return max(self.not_before, self.breaker.reopens_at() or 0.0)

    def capacity(self, queue_size: int) -> int:
        """How many of its queued deliveries it may hold in memory."""
        return queue_size if self.kind == "healthy" else min(queue_size, UNPROVEN_WINDOW)

    def idle(self) -> bool:
        return self.lane is None and self.pending == 0 and self.waiting == 0 and self.kind != "bad"

    def take_in(self, delivery: Delivery, capacity: int) -> None:
        """A new delivery: into the window when nothing queued is on disk alone and there is room."""
        if len(self.window) == self.pending and len(self.window) < capacity:
            self.window.append(delivery)
            self.cursor = delivery.turn
        self.pending += 1

    def refill(self, page: list[Delivery]) -> None:
        self.window.extend(page)
        if page:
            self.cursor = page[-1].turn

    def head_settled(self, waits: bool) -> Delivery:
        """The head leaves the queue: taken by the endpoint, or set waiting."""
        delivery = self.window.popleft()
        self.pending -= 1
        self.head_attempts = 0
        self.waiting += 1 if waits else 0
        return delivery

    def snapshot(self, now: float) -> dict[str, Any]:
        """For counters: the URL's origin only (its path and query may hold a user's token)."""
        parts = urlsplit(self.key[1])
        return {
            "filter": self.filter,
            "endpoint": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}",
            "kind": self.kind,
            "circuit": self.breaker.state(now),
            "slow": self.slow,
            "failures_in_a_row": self.breaker.failures,
            "times_opened": self.breaker.times_opened,
            "attempts": self.attempts,
            "queued": self.pending,
            "in_memory": len(self.window),
            "waiting": self.waiting,
            "last_failure": self.last_failure,
            "next_attempt_in_s": round(max(0.0, self.due() - now), 3) if self.pending else None,
        }


class Lanes:
    """How many senders each kind of endpoint may hold at once."""

    def __init__(self, senders: int) -> None:
        self.senders = senders
        self.busy: Counter[Kind] = Counter()

    def admits(self, kind: Kind) -> bool:
        if kind == "healthy":
            return True
        if self.busy["new"] + self.busy["bad"] >= self.senders - 1:
            return False
        return kind == "new" or self.busy["bad"] < max(1, self.senders // 2)

    def pick(self, endpoints: Iterable[Endpoint], now: float) -> Endpoint | None:
        """The first ready endpoint in turn that a lane admits: a healthy one at once; else a new one
        (its first answer settles what it is) before a bad one."""
        new: Endpoint | None = None
        bad: Endpoint | None = None
        for endpoint in endpoints:
            if not endpoint.ready(now):
                continue
            kind = endpoint.kind
            if kind == "healthy":
                return endpoint
            if kind == "new" and new is None and self.admits("new"):
                new = endpoint
            elif kind == "bad" and bad is None and self.admits("bad"):
                bad = endpoint
        return new or bad

    def waiting_for(self, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
        """The endpoints with work that a lane would admit now (for how long to sleep)."""
        return [e for e in endpoints if e.pending and e.lane is None and self.admits(e.kind)]

    def take(self, endpoint: Endpoint) -> None:
        endpoint.lane = endpoint.kind
        self.busy[endpoint.lane] += 1

    def release(self, endpoint: Endpoint) -> None:
        if endpoint.lane is not None:
            self.busy[endpoint.lane] -= 1
            endpoint.lane = None
