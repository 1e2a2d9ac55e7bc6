"""How many queries one client may have running at once: a user (by token) or, without a token, an
address. One client's burst of queries then waits its turn (429, Retry-After) instead of taking every
reading connection from everyone else."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi import Request

from starling.control.tokens import Principal

DEFAULT_PER_CLIENT = 4


def client_of(request: Request, who: Principal | None) -> str:
    """Whom a request counts against: its user, else its address."""
    if who is not None:
        return f"user:{who.user}"
    return f"address:{request.client.host if request.client else 'unknown'}"


class ClientSlots:
    """At most ``per_client`` queries running per client."""

    def __init__(self, per_client: int = DEFAULT_PER_CLIENT) -> None:
        self.per_client = per_client
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, client: str) -> bool:
        """A slot for ``client``, False when it has ``per_client`` queries running already."""
        with self._lock:
            if self._running[client] >= self.per_client:
                return False
            self._running[client] += 1
            return True

    def give_back(self, client: str) -> None:
        with self._lock:
            self._running[client] -= 1
            if self._running[client] <= 0:
                del self._running[client]

    def running(self, client: str) -> int:
        with self._lock:
            return self._running[client]
