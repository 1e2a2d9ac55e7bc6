"""Webhook deliveries: an HTTP POST of JSON per match, signed, retried, never in the pipeline's way.

Deliveries go into a bounded queue that a background thread empties, so a slow or dead endpoint
never slows the stage. Each POST carries ``X-Starling-Signature: sha256=<hex HMAC of the body>``
when the output has a secret, and ``X-Starling-Filter`` and ``X-Starling-Delivery`` headers. A
failed POST (an error, a timeout, a status other than 2xx) is retried with exponential back-off
(0.5 s, 1 s, 2 s ...) up to ``max_attempts``; then the delivery waits, counted, in a file of its
own and is tried again every ``redeliver_every_s`` until the endpoint takes it. A delivery is
written to the outbox before the stage commits its input, so a worker that dies loses none: the
next one sends what the outbox holds and was not marked done.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("starling.webhook")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    filter: str
    url: str
    secret: str | None
    body: bytes
    timeout_s: float
    max_attempts: int

    def to_line(self) -> str:
        fields = {k: getattr(self, k) for k in ("id", "filter", "url", "secret", "timeout_s", "max_attempts")}
        return json.dumps({**fields, "body": self.body.decode()}) + "\n"

    @staticmethod
    def from_line(line: str) -> Delivery:
        data = json.loads(line)
        return Delivery(body=data.pop("body").encode(), **data)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDeliverer:
    def __init__(
        self,
        directory: Path,
        queue_size: int = 10_000,
        redeliver_every_s: float = 30.0,
        backoff_s: float = 0.5,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.outbox = directory / "outbox.jsonl"
        self.done_file = directory / "done.txt"
        self.waiting_file = directory / "waiting.jsonl"
        self.redeliver_every_s = redeliver_every_s
        self.backoff_s = backoff_s
        self.queue: queue.Queue[Delivery] = queue.Queue(maxsize=queue_size)
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.waiting: dict[str, Delivery] = {}
        self._lock = threading.RLock()
        self._staged: list[Delivery] = []
        self._stop = threading.Event()
        self._client = httpx.Client(follow_redirects=False)
        self._recover()
        self._thread = threading.Thread(target=self._run, daemon=True, name="webhooks")
        self._thread.start()

    # -- the stage's side ---------------------------------------------------------------------------

    def submit(
        self,
        filter_name: str,
        url: str,
        secret: str | None,
        payload: dict[str, Any],
        timeout_s: float,
        max_attempts: int,
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._staged.append(
            Delivery(uuid.uuid4().hex, filter_name, url, secret, body, timeout_s, max_attempts)
        )

    def flush(self) -> None:
        """Make the staged deliveries durable (the outbox), then hand them to the sender."""
        if not self._staged:
            return
        staged, self._staged = self._staged, []
        with self._lock:  # not compacted away between the write and the queue
            with self.outbox.open("a", encoding="utf-8") as handle:
                handle.writelines(d.to_line() for d in staged)
            for delivery in staged:
                self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        try:
            self.queue.put_nowait(delivery)
        except queue.Full:  # the endpoint is far behind: keep it waiting rather than slow the stage
            self._wait(delivery)

    # -- the sender's side --------------------------------------------------------------------------

    def _run(self) -> None:
        next_redelivery = time.monotonic() + self.redeliver_every_s
        while not self._stop.is_set():
            try:
                delivery = self.queue.get(timeout=0.2)
            except queue.Empty:
                delivery = None
            if delivery is not None:
                self._send(delivery)
            if time.monotonic() >= next_redelivery:
                next_redelivery = time.monotonic() + self.redeliver_every_s
                self.redeliver()
            self._compact()

    def _send(self, delivery: Delivery) -> bool:
        headers = {
            "Content-Type": "application/json",
            "X-Starling-Filter": delivery.filter,
            "X-Starling-Delivery": delivery.id,
        }
        if delivery.secret:
            headers["X-Starling-Signature"] = signature(delivery.secret, delivery.body)
        for attempt in range(delivery.max_attempts):
            try:
                response = self._client.post(
                    delivery.url, content=delivery.body, headers=headers, timeout=delivery.timeout_s
                )
                if 200 <= response.status_code < 300:
                    self._done(delivery)
                    return True
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt + 1 < delivery.max_attempts and not self._stop.wait(self.backoff_s * 2**attempt):
                continue
            log.warning(
                "webhook for %s to %s failed (%s); kept for redelivery", delivery.filter, delivery.url, reason
            )
        self._wait(delivery)
        return False

    def _done(self, delivery: Delivery) -> None:
        with self._lock:
            self.delivered[delivery.filter] += 1
            was_waiting = self.waiting.pop(delivery.id, None) is not None
            with self.done_file.open("a", encoding="utf-8") as handle:
                handle.write(delivery.id + "\n")
            if was_waiting:
                self._write_waiting()

    def _wait(self, delivery: Delivery) -> None:
        with self._lock:
            if delivery.id not in self.waiting:
                self.failed[delivery.filter] += 1
            self.waiting[delivery.id] = delivery
            self._write_waiting()

    def _write_waiting(self) -> None:
        staged = self.waiting_file.with_suffix(".tmp")
        staged.write_text("".join(d.to_line() for d in self.waiting.values()), encoding="utf-8")
        staged.replace(self.waiting_file)

    def redeliver(self) -> int:
        """Try every waiting delivery once more (with its retries); how many went through."""
        with self._lock:
            waiting = list(self.waiting.values())
        return sum(1 for delivery in waiting if not self._stop.is_set() and self._send(delivery))

    def _compact(self) -> None:
        """When nothing is in flight, the outbox and its done-list can start again empty."""
        with self._lock:
            if self.queue.empty() and not self._staged and self.outbox.exists():
                self.outbox.unlink()
                self.done_file.unlink(missing_ok=True)

    def _recover(self) -> None:
        """After a restart: send again what the outbox holds and was not done; keep what was waiting."""
        done = set(self.done_file.read_text().split()) if self.done_file.exists() else set()
        if self.waiting_file.exists():
            for line in self.waiting_file.read_text(encoding="utf-8").splitlines():
                delivery = Delivery.from_line(line)
                self.waiting[delivery.id] = delivery
        if self.outbox.exists():
            for line in self.outbox.read_text(encoding="utf-8").splitlines():
                delivery = Delivery.from_line(line)
                if delivery.id not in done and delivery.id not in self.waiting:
                    self._enqueue(delivery)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            waiting = Counter(d.filter for d in self.waiting.values())
            return {
                "delivered": dict(self.delivered),
                "failed": dict(self.failed),
                "waiting": dict(waiting),
                "queued": self.queue.qsize(),
            }

    def close(self, drain_s: float = 5.0) -> None:
        """Give the queue a few seconds to empty; what is left stays in the outbox for next time."""
        deadline = time.monotonic() + drain_s
        while not self.queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=10)
        self._client.close()
