"""An endpoint's pace after failures: capped exponential back-off and a circuit breaker.

- :class:`Backoff`: after the n-th failure in a row, wait ``first * 2**(n-1)``, never more than ``cap``.
- :class:`CircuitBreaker`: after ``threshold`` failures in a row the circuit opens and the endpoint is
  left alone (its deliveries wait, unattempted) for ``cool_down_s``; then one delivery goes as a probe
  (half-open). A probe that succeeds closes the circuit; one that fails opens it for another cool-down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float = 0.5
    cap_s: float = 300.0

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (none after none)."""
        if failures <= 0:
            return 0.0
        exponent = min(failures - 1, 60)  # 2**60 times anything is past any cap; no overflow
        return float(min(self.cap_s, self.first_s * 2.0**exponent))


@dataclass(slots=True)
class CircuitBreaker:
    threshold: int = 5
    cool_down_s: float = 60.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    times_opened: int = field(default=0)

    def state(self, now: float) -> State:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.probing or now >= self.opened_at + self.cool_down_s else "open"

    def allows(self, now: float) -> bool:
        """Whether an attempt may be made now (closed, or open past its cool-down with no probe out)."""
        if self.opened_at is None:
            return True
        return not self.probing and now >= self.opened_at + self.cool_down_s

    def attempting(self) -> None:
        """An attempt starts: when the circuit is open, it is the probe."""
        if self.opened_at is not None:
            self.probing = True

    def succeeded(self) -> bool:
        """A success closes the circuit; whether it was open (the endpoint has recovered)."""
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.probing = False
        return was_open

    def failed(self, now: float) -> bool:
        """A failure; whether it opened a closed circuit (a failed probe opens it again, quietly)."""
        self.failures += 1
        was_closed = self.opened_at is None
        if not was_closed or self.failures >= self.threshold:
            self.opened_at = now
            self.probing = False
            self.times_opened += 1 if was_closed else 0
            return was_closed
        return False

    def reopens_at(self) -> float | None:
        return None if self.opened_at is None else self.opened_at + self.cool_down_s
