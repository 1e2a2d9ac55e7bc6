"""Webhook deliveries: an HTTP POST of JSON per match, signed, retried, never in anyone else's way.

- **Durable first**: the stage's deliveries are written to the outbox (``outbox.py``) before it commits
  its input, then handed to the senders; a worker that dies loses none.
- **A queue per endpoint** (one output of one filter, ``endpoint.py``), a bounded window of it in memory,
  the rest on disk (``queue_size`` deliveries for a healthy endpoint, a few for any other). A fixed
  number of sender threads serve the endpoints in turn, one delivery at a time each (round robin), an
  endpoint never by two at once. Bad endpoints (failing, or slow to answer) hold at most half of the
  senders, and bad and new ones together all but one (``endpoint.Lanes``), so healthy endpoints always
  have a sender: a dead, hanging or slow endpoint never delays another's deliveries. What is known of
  each endpoint is kept in the outbox, so a restart does not make a dead endpoint new again.
- **Capped back-off, a circuit breaker** (``breaker.py``): after a failure the endpoint waits
  ``backoff_s * 2**(n-1)``, at most ``max_backoff_s``; after ``breaker_failures`` failures in a row its
  circuit opens and its deliveries wait unattempted for ``breaker_cool_down_s``, then one goes as a probe.
- A delivery whose ``max_attempts`` are spent, or that cannot succeed as it is (a redirect, an address
  the egress policy refuses), **waits**, counted with its reason, and is queued again every
  ``redeliver_every_s`` (and as soon as its endpoint takes a delivery again).
- **Egress**: only public addresses, and those the operator allows (``egress.py``); redirects not followed.
- **Stable ids**: ``Starling-Delivery-Id`` is derived from the filter, the alert and the URL, the same on
  every retry and redelivery (``outbox.delivery_id``), so a receiver can deduplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starling.components.outputs import EgressPolicy, operator_allow
from starling.components.sinks.deliver.breaker import Backoff, CircuitBreaker
from starling.components.sinks.deliver.egress import Resolver
from starling.components.sinks.deliver.endpoint import SLOW_S, Endpoint, Lanes
from starling.components.sinks.deliver.outbox import Delivery, Outbox, delivery_id
from starling.components.sinks.deliver.sender import Outcome, guarded_pool, post, signature

__all__ = ["WebhookDeliverer", "signature"]

log = logging.getLogger("starling.webhook")
_IDLE_WAIT_S = 0.5
_FORGET_ENDPOINTS_S = 30 * 86_400.0


class WebhookDeliverer:
    def __init__(
        self,
        directory: Path,
        queue_size: int = 100,
        redeliver_every_s: float = 30.0,
        backoff_s: float = 0.5,
        *,
        max_backoff_s: float = 300.0,
        breaker_failures: int = 5,
        breaker_cool_down_s: float = 60.0,
        senders: int = 4,
        allow: Sequence[str] = (),
        resolver: Resolver = socket.getaddrinfo,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = Outbox(directory)
        self.queue_size = queue_size
        self.redeliver_every_s = redeliver_every_s
        self.backoff = Backoff(backoff_s, max_backoff_s)
        self.policy = EgressPolicy.of((*operator_allow(), *allow))
        self._breaker = (breaker_failures, breaker_cool_down_s)
        self._clock = clock
        self._cond = threading.Condition()
        self._endpoints: dict[tuple[str, str], Endpoint] = {}  # in turn order: the one served goes last
        self._staged: list[Delivery] = []
        self._lanes = Lanes(senders)
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._stop = threading.Event()
        self._pool = guarded_pool(self.policy, senders, resolver, ssl_context)
        for key, (queued, waiting) in self.outbox.endpoints().items():
            endpoint = self._endpoint(key)
            endpoint.pending, endpoint.waiting = queued, waiting
        self._threads = [
            threading.Thread(target=self._serve, daemon=True, name=f"webhooks-{n}") for n in range(senders)
        ]
        self._threads.append(
            threading.Thread(target=self._keep_house, daemon=True, name="webhooks-redeliver")
        )
        for thread in self._threads:
            thread.start()

    # -- the stage's side ---------------------------------------------------------------------------

    def submit(
        self,
        filter_name: str,
        url: str,
        secret: str | None,
        payload: dict[str, Any],
        timeout_s: float,
        max_attempts: int,
        key: str | None = None,
    ) -> None:
        """Stage a delivery; ``key`` names the match (``survey:alert_id``; else the body's digest)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        identity = delivery_id(filter_name, key or hashlib.sha256(body).hexdigest(), url)
        self._staged.append(Delivery(identity, filter_name, url, secret, body, timeout_s, max_attempts))

    def flush(self) -> None:
        """Make the staged deliveries durable (the outbox), then hand them to the senders."""
        if not self._staged:
            return
        staged, self._staged = self._staged, []
        with self._cond:  # no sender refills a window between the write and the hand-over
            for delivery in self.outbox.add(staged):
                endpoint = self._endpoint(delivery.endpoint)
                endpoint.take_in(delivery, endpoint.capacity(self.queue_size))
            self._cond.notify_all()

    def _endpoint(self, key: tuple[str, str]) -> Endpoint:
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = Endpoint(key, CircuitBreaker(*self._breaker))
            known = self.outbox.health(key)
            if known is not None:  # as it was last known, before a restart or while it was idle
                now = self._clock()
                endpoint.breaker.failures, endpoint.slow, endpoint.proven = known
                if endpoint.breaker.failures >= endpoint.breaker.threshold:
                    endpoint.breaker.opened_at = now  # a probe after the cool-down, not a flood now
                    endpoint.breaker.times_opened = 1
                endpoint.not_before = now + self.backoff.delay(endpoint.breaker.failures)
        return endpoint

    # -- the senders' side --------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            endpoint, delivery, attempt = taken
            started = time.monotonic()
            outcome = post(self._pool, self.policy, delivery, attempt)
            self._settle(endpoint, delivery, outcome, time.monotonic() - started)

    def _take(self) -> tuple[Endpoint, Delivery, int] | None:
        """The head of the next endpoint ready, in turn; None when stopping."""
        with self._cond:
            while not self._stop.is_set():
                now = self._clock()
                endpoint = self._pick(now)
                delivery = self._head(endpoint) if endpoint is not None else None
                if endpoint is not None and delivery is not None:
                    self._lanes.take(endpoint)
                    endpoint.breaker.attempting()
                    endpoint.head_attempts += 1
                    endpoint.attempts += 1
                    return endpoint, delivery, endpoint.head_attempts
                if endpoint is None:
                    self._cond.wait(self._idle_wait(now))
        return None

    def _pick(self, now: float) -> Endpoint | None:
        endpoint = self._lanes.pick(self._endpoints.values(), now)
        return None if endpoint is None else self._turn_taken(endpoint)

    def _turn_taken(self, endpoint: Endpoint) -> Endpoint:
        del self._endpoints[endpoint.key]  # it goes last
        self._endpoints[endpoint.key] = endpoint
        return endpoint

    def _head(self, endpoint: Endpoint) -> Delivery | None:
        if not endpoint.window:
            capacity = endpoint.capacity(self.queue_size)
            endpoint.refill(self.outbox.page(endpoint.key, endpoint.cursor, capacity))
            if not endpoint.window:  # the count was ahead of the outbox: nothing is queued after all
                endpoint.pending = 0
                return None
        return endpoint.window[0]

    def _idle_wait(self, now: float) -> float:
        """Until the next endpoint a lane admits is due (a settling sender wakes the others)."""
        due = [e.due() for e in self._lanes.waiting_for(self._endpoints.values())]
        return min([_IDLE_WAIT_S, *(max(0.001, d - now) for d in due)])

    def _settle(self, endpoint: Endpoint, delivery: Delivery, outcome: Outcome, took_s: float) -> None:
        with self._cond:
            self._lanes.release(endpoint)
            before = endpoint.health()
            endpoint.slow = took_s > SLOW_S
            if outcome.ok:
                self._succeeded(endpoint)
            else:
                self._failed(endpoint, delivery, outcome)
            if endpoint.health() != before:
                self.outbox.remember(endpoint.key, endpoint.health())
            self._cond.notify_all()
        if outcome.ok:
            self.outbox.done([delivery.id])

    def _succeeded(self, endpoint: Endpoint) -> None:
        endpoint.head_settled(waits=False)
        endpoint.not_before = 0.0
        endpoint.proven = True
        self.delivered[endpoint.filter] += 1
        if endpoint.breaker.succeeded():
            log.info("webhook endpoint of %s has recovered: circuit closed", endpoint.filter)
        if endpoint.waiting:  # it takes deliveries again: what was waiting goes now
            self._requeue(endpoint)

    def _failed(self, endpoint: Endpoint, delivery: Delivery, outcome: Outcome) -> None:
        now = self._clock()
        self.reasons[endpoint.filter][outcome.reason] += 1
        endpoint.last_failure = outcome.reason
        opened = endpoint.breaker.failed(now)
        endpoint.not_before = now + self.backoff.delay(endpoint.breaker.failures)
        if outcome.permanent or endpoint.head_attempts >= delivery.max_attempts:
            endpoint.head_settled(waits=True)
            if self.outbox.wait(delivery, outcome.reason):
                self.failed[endpoint.filter] += 1
        if opened:
            log.warning(
                "webhook endpoint of %s failed %d times in a row (%s): circuit open for %.0f s",
                endpoint.filter,
                endpoint.breaker.failures,
                outcome.reason,
                endpoint.breaker.cool_down_s,
            )

    def _requeue(self, endpoint: Endpoint) -> int:
        count = self.outbox.requeue(endpoint.key)
        endpoint.waiting = 0
        endpoint.pending += count
        return count

    def redeliver(self) -> int:
        """Queue again the waiting deliveries of every endpoint that may be tried; how many."""
        with self._cond:
            now = self._clock()
            count = sum(
                self._requeue(e) for e in self._endpoints.values() if e.waiting and e.breaker.allows(now)
            )
            for key in [k for k, e in self._endpoints.items() if e.idle()]:
                del self._endpoints[key]  # nothing in memory until it has deliveries again
            self.outbox.forget_endpoints(_FORGET_ENDPOINTS_S)
            self._cond.notify_all()
        return count

    def _keep_house(self) -> None:
        while not self._stop.wait(self.redeliver_every_s):
            self.redeliver()

    # -- the operator's side ------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        with self._cond:
            now = self._clock()
            waiting: Counter[str] = Counter()
            for endpoint in self._endpoints.values():
                waiting[endpoint.filter] += endpoint.waiting
            return {
                "delivered": dict(self.delivered),
                "failed": dict(self.failed),
                "waiting": {name: count for name, count in waiting.items() if count},
                "queued": sum(e.pending for e in self._endpoints.values()),
                "reasons": {name: dict(reasons) for name, reasons in self.reasons.items()},
                "endpoints": [e.snapshot(now) for e in self._endpoints.values()],
            }

    def close(self, drain_s: float = 5.0) -> None:
        """Give the healthy endpoints a few seconds to take what is queued; the rest stays in the outbox."""
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self._cond:
                if not any(e.pending and e.kind != "bad" for e in self._endpoints.values()):
                    break
            time.sleep(0.05)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + 10.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._pool.close()
        if not any(thread.is_alive() for thread in self._threads):
            self.outbox.close()
