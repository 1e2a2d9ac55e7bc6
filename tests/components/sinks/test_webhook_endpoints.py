"""One endpoint never delays another: a queue per endpoint, capped back-off, a circuit breaker, bounded
memory, and delivery ids a receiver can deduplicate on. Every endpoint is a real server (or a real refused
or hanging port) on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starling.components.sinks.deliver.breaker import Backoff, CircuitBreaker
from starling.components.sinks.deliver.endpoint import UNPROVEN_WINDOW
from starling.components.sinks.deliver.outbox import delivery_id
from starling.components.sinks.deliver.webhook import WebhookDeliverer
from tests.components.sinks.endpoints import Recorder, free_port, hanging, recorder
from tests.support.helpers import wait_until

LOOPBACK = ["127.0.0.1/32"]


def _endpoint(deliverer: WebhookDeliverer, filter_name: str) -> dict[str, Any]:
    (found,) = [e for e in deliverer.counters()["endpoints"] if e["filter"] == filter_name]
    return found


def _deliverer(directory: Path) -> WebhookDeliverer:
    """Two senders; the bad endpoints tried again and again (short back-off, a circuit that stays closed)."""
    return WebhookDeliverer(
        directory, backoff_s=0.01, max_backoff_s=0.05, breaker_failures=10_000, senders=2, allow=LOOPBACK
    )


def _burst(deliverer: WebhookDeliverer, healthy: Recorder, bad: dict[str, str], burst: int) -> float:
    """Seconds for the healthy endpoint to take 300 deliveries submitted after 50 to each bad one."""
    for name, url in bad.items():
        timeout_s = 5.0 if name == "slow" else 2.0  # the slow one answers, after 1.2 s
        for n in range(50):
            deliverer.submit(name, url, None, {"burst": burst, "n": n}, timeout_s, max_attempts=20)
    for n in range(300):
        deliverer.submit("healthy", healthy.url, None, {"burst": burst, "n": n}, 1.0, max_attempts=20)
    before = len(healthy.requests)
    started = time.monotonic()
    deliverer.flush()
    wait_until(lambda: len(healthy.requests) == before + 300, 60, "the healthy endpoint's deliveries")
    elapsed = time.monotonic() - started
    taken = [json.loads(r.body) for r in healthy.requests[before:]]
    assert taken == [{"burst": burst, "n": n} for n in range(300)]  # all, in order
    return elapsed


def _settled_once(deliverer: WebhookDeliverer, names: Iterable[str]) -> bool:
    counters = deliverer.counters()
    return all(name in counters["reasons"] or name in counters["delivered"] for name in names)


def _slowly(index: int) -> tuple[int, dict[str, str]]:
    time.sleep(1.2)  # slower than SLOW_S
    return 204, {}


def test_dead_failing_hanging_and_slow_endpoints_do_not_delay_a_healthy_one(tmp_path: Path) -> None:
    with recorder() as healthy:
        deliverer = _deliverer(tmp_path / "alone")
        try:
            alone = _burst(deliverer, healthy, {}, 0)
        finally:
            deliverer.close(drain_s=0)
    with recorder(lambda n: (503, {})) as failing, recorder(_slowly) as slow, hanging() as hung:
        bad = {
            "refused": f"http://127.0.0.1:{free_port()}/hook",
            "failing": failing.url,
            "hanging": hung,
            "slow": slow.url,
        }
        with recorder() as healthy:
            deliverer = _deliverer(tmp_path / "hooks")
            try:
                first = _burst(deliverer, healthy, bad, 1)  # every endpoint new: one lane for the unknown
                wait_until(lambda: _settled_once(deliverer, bad), 30, "an attempt of every bad one to end")
                known = _burst(deliverer, healthy, bad, 2)
                reasons = deliverer.counters()["reasons"]
            finally:
                deliverer.close(drain_s=0)
            restarted = _deliverer(tmp_path / "hooks")  # what is known of each endpoint is kept
            try:
                after_restart = _burst(restarted, healthy, bad, 3)
                kinds = {e["filter"]: e["kind"] for e in restarted.counters()["endpoints"]}
            finally:
                restarted.close(drain_s=0)
    print(
        f"\n300 deliveries to a healthy endpoint, 2 senders: alone {alone:.2f} s; beside 4 bad endpoints "
        f"{first:.2f} s all new, {known:.2f} s once known, {after_restart:.2f} s after a restart"
    )
    assert first < 8.0  # new endpoints share one lane until their first answer says what they are
    assert known < 3.0
    assert after_restart < 3.0
    assert kinds == {
        "healthy": "healthy",
        "refused": "bad",
        "failing": "bad",
        "hanging": "bad",
        "slow": "bad",
    }
    assert any(r.startswith("ConnectError") for r in reasons["refused"])
    assert "HTTP 503" in reasons["failing"]
    assert "timeout (ReadTimeout)" in reasons["hanging"]
    assert "slow" not in reasons  # slow, not failing: its deliveries go, in the lane of the bad
    assert len(slow.accepted()) >= 2


def test_the_circuit_opens_after_n_failures_and_closes_after_recovery(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    deliverer = WebhookDeliverer(
        tmp_path, backoff_s=0.01, breaker_failures=3, breaker_cool_down_s=1.0, allow=LOOPBACK
    )
    try:
        for n in range(5):
            deliverer.submit("north", url, None, {"n": n}, 1.0, max_attempts=20)
        deliverer.flush()
        wait_until(lambda: _endpoint(deliverer, "north")["circuit"] == "open", 10, "the circuit to open")
        assert _endpoint(deliverer, "north")["attempts"] == 3
        time.sleep(0.5)  # within the cool-down: nothing is attempted
        assert _endpoint(deliverer, "north")["attempts"] == 3
        wait_until(lambda: _endpoint(deliverer, "north")["attempts"] == 4, 10, "the probe")
        assert _endpoint(deliverer, "north")["times_opened"] == 1  # the failed probe reopened it
        with recorder(port=port) as back:
            wait_until(lambda: len(back.requests) == 5, 10, "the deliveries after recovery")
        shown = _endpoint(deliverer, "north")
        counters = deliverer.counters()
    finally:
        deliverer.close()
    assert [json.loads(r.body)["n"] for r in back.requests] == list(range(5))
    assert (shown["circuit"], shown["failures_in_a_row"], shown["queued"]) == ("closed", 0, 0)
    assert counters["delivered"] == {"north": 5}
    assert counters["failed"] == {}  # they waited in their queue, no attempt spent but the probe's


def test_a_circuit_breaker_probes_once_per_cool_down() -> None:
    breaker = CircuitBreaker(threshold=2, cool_down_s=10.0)
    assert not breaker.failed(0.0)
    assert breaker.allows(0.0)
    assert breaker.failed(1.0)
    assert breaker.state(1.0) == "open"
    assert not breaker.allows(10.9)
    assert breaker.allows(11.0)
    assert breaker.state(11.0) == "half-open"
    breaker.attempting()
    assert not breaker.allows(11.0)  # one probe at a time
    assert not breaker.failed(11.5)  # reopened, quietly
    assert not breaker.allows(21.4)
    assert breaker.allows(21.5)
    breaker.attempting()
    assert breaker.succeeded()
    assert breaker.state(22.0) == "closed"
    assert breaker.failures == 0


def test_the_back_off_doubles_up_to_its_cap_and_never_past_it(tmp_path: Path) -> None:
    backoff = Backoff(first_s=0.5, cap_s=300.0)
    delays = [backoff.delay(n) for n in range(1, 2_000)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == 300.0
    assert delays == sorted(delays)
    assert backoff.delay(10**9) == 300.0
    first, cap = 0.02, 0.16
    with recorder(lambda n: (503, {})) as failing:
        deliverer = WebhookDeliverer(
            tmp_path, backoff_s=first, max_backoff_s=cap, breaker_failures=10_000, allow=LOOPBACK
        )
        try:
            deliverer.submit("north", failing.url, None, {"n": 1}, 1.0, max_attempts=20)
            deliverer.flush()
            wait_until(lambda: deliverer.counters()["failed"], 30, "twenty attempts")
        finally:
            deliverer.close()
    times = [r.at for r in failing.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\ngaps between attempts (s): {[round(g, 3) for g in gaps]}")
    assert len(times) == 20
    assert gaps[0] >= first - 0.005
    assert gaps[2] >= 4 * first - 0.005
    assert all(g >= cap - 0.005 for g in gaps[4:])  # at the cap ...
    assert max(gaps) <= cap + 0.25  # ... and never past it (0.25 s for a busy machine)


def test_the_delivery_id_is_the_same_on_every_retry_and_redelivery(tmp_path: Path) -> None:
    with recorder(lambda n: (503 if n < 3 else 204, {})) as flaky:
        deliverer = WebhookDeliverer(tmp_path, backoff_s=0.01, allow=LOOPBACK)
        try:
            for _ in range(2):  # the same match twice in a batch (a batch taken again): sent once
                deliverer.submit(
                    "north", flaky.url, None, {"alert_id": 42}, 1.0, max_attempts=2, key="ztf:42"
                )
            deliverer.flush()
            wait_until(lambda: deliverer.counters()["failed"] == {"north": 1}, 10, "two attempts spent")
            assert deliverer.redeliver() == 1
            wait_until(lambda: deliverer.counters()["delivered"] == {"north": 1}, 10, "the redelivery")
            deliverer.submit("north", flaky.url, None, {"alert_id": 42}, 1.0, max_attempts=2, key="ztf:42")
            deliverer.flush()  # delivered before: sent again, with the same id, for the receiver to drop
            wait_until(lambda: len(flaky.requests) == 5, 10, "the second delivery")
        finally:
            deliverer.close()
    expected = delivery_id("north", "ztf:42", flaky.url)
    assert [r.status for r in flaky.requests] == [503, 503, 503, 204, 204]
    assert {r.headers["Starling-Delivery-Id"] for r in flaky.requests} == {expected}
    assert {r.headers["X-Starling-Delivery"] for r in flaky.requests} == {expected}
    assert [r.headers["Starling-Delivery-Attempt"] for r in flaky.requests] == ["1", "2", "1", "2", "1"]
    assert delivery_id("north", "ztf:43", flaky.url) != expected != delivery_id("south", "ztf:42", flaky.url)


def test_an_endpoints_queue_holds_a_bounded_window_in_memory_the_rest_on_disk(tmp_path: Path) -> None:
    port, count, window = free_port(), 500, 20
    url = f"http://127.0.0.1:{port}/hook"
    deliverer = WebhookDeliverer(
        tmp_path,
        queue_size=window,
        backoff_s=0.01,
        breaker_failures=2,
        breaker_cool_down_s=0.3,
        allow=LOOPBACK,
    )
    held: list[int] = []
    try:
        for n in range(count):
            deliverer.submit("north", url, None, {"n": n}, 1.0, max_attempts=20)
        deliverer.flush()
        shown = _endpoint(deliverer, "north")
        assert (shown["queued"], shown["in_memory"]) == (count, UNPROVEN_WINDOW)  # not seen to work yet
        with recorder(port=port) as back:

            def drained() -> bool:
                held.append(_endpoint(deliverer, "north")["in_memory"])
                return len(back.requests) == count

            wait_until(drained, 60, "every delivery once the endpoint is back")
    finally:
        deliverer.close()
    assert max(held) <= window
    assert [json.loads(r.body)["n"] for r in back.requests] == list(range(count))


def test_an_outbox_of_the_earlier_kind_is_taken_in(tmp_path: Path) -> None:
    """What outbox.jsonl holds and done.txt does not is sent, what waiting.jsonl holds waits; the old
    files go."""
    with recorder() as receiver:

        def line(name: str) -> str:
            fields = {
                "filter": "north",
                "url": receiver.url,
                "secret": None,
                "timeout_s": 1.0,
                "max_attempts": 3,
            }
            return json.dumps({"id": name, **fields, "body": json.dumps({"n": name})}) + "\n"

        (tmp_path / "outbox.jsonl").write_text(line("a") + line("b") + line("c") + line("d"))
        (tmp_path / "done.txt").write_text("a\n")
        (tmp_path / "waiting.jsonl").write_text(line("d"))
        deliverer = WebhookDeliverer(tmp_path, allow=LOOPBACK)
        try:
            wait_until(lambda: len(receiver.requests) == 3, 10, "the three not done")
        finally:
            deliverer.close()
    # The two queued first; the waiting one as soon as the endpoint has taken a delivery.
    assert [r.headers["Starling-Delivery-Id"] for r in receiver.requests] == ["b", "c", "d"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("outbox.sqlite")) == []
