"""Telling an outage from a bad alert, and waiting one out.

A component that fails because of the alert (bad data, a bug it meets on that alert) costs that alert
alone: it is isolated and dead-lettered. A component that fails because something it depends on is
away (a full or read-only disk, a locked or unreachable store, Kafka not acknowledging) would fail on
every alert alike; dead-lettering them would turn an outage into a storm of good alerts lost from
the stream. So those failures are outages: the stage keeps the batch, backs off and takes it again
until the outage ends, and shows it in ``/status`` and ``/metrics`` meanwhile.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from starling.errors import OutageError

log = logging.getLogger("starling.outage")

# Errors of the machine or the network, not of the data being written.
_OUTAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EAGAIN,
    errno.EBUSY,
    errno.ENFILE,
    errno.EMFILE,
    errno.ETIMEDOUT,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}

MAX_BACKOFF_S = 30.0


def as_outage(exc: BaseException) -> OutageError | None:
    """The outage ``exc`` stands for, or None when it is the alert's (or the component's) fault."""
    if isinstance(exc, OutageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _OUTAGE_ERRNOS:
        outage = OutageError(f"{type(exc).__name__}: {exc}")
        outage.__cause__ = exc
        return outage
    return None


@dataclass(slots=True)
class OutageState:
    reason: str
    since: float
    attempts: int
    next_try_in_s: float


class Backoff:
    """The current outage of a runtime, if any, and the wait before the next try (1 s, 2 s ... 30 s)."""

    def __init__(self) -> None:
        self._state: OutageState | None = None
        self._lock = threading.Lock()
        self.outages_total = 0

    def wait(self, outage: OutageError, stop: threading.Event, where: str) -> None:
        """Record the failed try and sleep before the next one (returns early when ``stop`` is set)."""
        with self._lock:
            previous = self._state
            attempts = previous.attempts + 1 if previous is not None else 1
            delay = min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))
            since = previous.since if previous is not None else time.time()
            if previous is None:
                self.outages_total += 1
            self._state = OutageState(str(outage), since, attempts, delay)
        log.warning("%s: %s; taking the batch again in %.0f s (try %d)", where, outage, delay, attempts)
        stop.wait(delay)

    def clear(self) -> None:
        """The batch went through: the outage, if there was one, is over."""
        if self._state is not None:
            with self._lock:
                if self._state is not None:
                    log.warning("outage over after %d tries: %s", self._state.attempts, self._state.reason)
                self._state = None

    @property
    def active(self) -> bool:
        return self._state is not None

    def status(self) -> dict[str, Any] | None:
        state = self._state
        if state is None:
            return None
        return {
            "reason": state.reason,
            "since": state.since,
            "for_s": round(time.time() - state.since, 3),
            "attempts": state.attempts,
            "next_try_in_s": state.next_try_in_s,
        }
