"""Where matches go: VOEvent packets valid against the VOEvent 2.0 schema, signed webhooks that
survive an endpoint that fails then recovers, files, and the rate cap."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import xmlschema

from starling.alert.model import Alert
from starling.assembly import route_deliveries
from starling.components.filters.ratecap import RateCap
from starling.components.outputs import ALLOW_ENV
from starling.components.sinks.deliver.outbox import delivery_id
from starling.components.sinks.deliver.voevent import describe, voevent_xml
from starling.components.sinks.deliver.webhook import WebhookDeliverer, signature
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec, PipelineSpec
from tests.components.sinks.endpoints import free_port
from tests.support.helpers import decode_samples, synthetic_alerts, wait_until
from tests.support.webhook_server import WebhookReceiver

SECRET = "a-secret-of-sixteen-chars"
# The receivers live on 127.0.0.1, which webhooks may reach only when the operator allows it.
LOOPBACK = ["127.0.0.1/32"]


@pytest.fixture(scope="module")
def sample_alerts(samples: Path) -> list[Alert]:
    return decode_samples(samples)


@pytest.mark.samples
def test_voevent_packets_are_valid_voevent_2_0(samples: Path, sample_alerts: list[Alert]) -> None:
    schema = xmlschema.XMLSchema(str(samples / "voevent" / "VOEvent-v2.0.xsd"))
    for alert in sample_alerts:
        alert.annotations["history-summary"] = {"n_detections": 2, "peak_mag": 18.1, "delta": None}
        packet = voevent_xml(alert, "bright", "mag < 19 AND reliability > 0.5")
        schema.validate(packet.decode())
        shown = describe(packet)
        assert shown["ivorn"] == f"ivo://starling.broker/filters/bright#{alert.survey}-{alert.alert_id}"
        assert (shown["ra"], shown["dec"]) == (pytest.approx(alert.ra), pytest.approx(alert.dec))
    # The check can fail: a packet without its WhereWhen location is refused.
    broken = voevent_xml(sample_alerts[0], "bright", "mag < 19").replace(b"<ObsDataLocation>", b"<ObsData>")
    broken = broken.replace(b"</ObsDataLocation>", b"</ObsData>")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(broken.decode())


def test_webhooks_are_signed_and_survive_an_endpoint_that_fails_then_recovers(tmp_path: Path) -> None:
    with WebhookReceiver(fail_first=3) as receiver:
        deliverer = WebhookDeliverer(tmp_path, backoff_s=0.05, allow=LOOPBACK)
        try:
            for n in range(10):
                deliverer.submit("bright", receiver.url, SECRET, {"n": n}, 2.0, max_attempts=5)
            deliverer.flush()
            wait_until(lambda: len(receiver.received) == 10, 30, "every delivery")
        finally:
            deliverer.close()
    assert receiver.refused == 3  # the first three attempts were refused, then retried
    assert sorted(r["json"]["n"] for r in receiver.received) == list(range(10))
    for request in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Starling-Signature"] == expected
        assert request["headers"]["X-Starling-Filter"] == "bright"
    assert deliverer.counters()["delivered"] == {"bright": 10}
    assert deliverer.counters()["failed"] == {}


def test_a_dead_endpoint_keeps_deliveries_for_redelivery_even_across_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    # Each delivery spends its attempts (the circuit stays closed), then waits for redelivery.
    deliverer = WebhookDeliverer(
        tmp_path, backoff_s=0.01, max_backoff_s=0.05, breaker_failures=100, allow=LOOPBACK
    )
    for n in range(5):
        deliverer.submit("north", url, None, {"n": n}, 0.5, max_attempts=2)
    deliverer.flush()
    wait_until(lambda: deliverer.counters()["waiting"].get("north") == 5, 30, "the deliveries to wait")
    assert deliverer.counters()["failed"] == {"north": 5}
    deliverer.close()
    # A new worker finds them waiting; the endpoint is back; they go through.
    with WebhookReceiver(port=port) as receiver:
        restarted = WebhookDeliverer(
            tmp_path, backoff_s=0.01, max_backoff_s=0.05, breaker_failures=100, allow=LOOPBACK
        )
        try:
            assert restarted.counters()["waiting"] == {"north": 5}
            assert restarted.redeliver() == 5  # queued again at once (else at the next redelivery)
            wait_until(lambda: len(receiver.received) == 5, 30, "the redeliveries")
            assert sorted(r["json"]["n"] for r in receiver.received) == list(range(5))
            assert restarted.counters()["waiting"] == {}
        finally:
            restarted.close()


def test_signature_is_hmac_sha256_of_the_body() -> None:
    assert signature("k" * 16, b"{}") == "sha256=" + hmac.new(b"k" * 16, b"{}", hashlib.sha256).hexdigest()


def test_an_embedded_run_delivers_to_files_voevent_and_a_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts = 600
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")  # the operator's allow-list, where filters are checked
    with WebhookReceiver() as receiver:
        spec = route_deliveries(
            PipelineSpec(
                batch_size=200,
                source=ComponentSpec(
                    use="synthetic", config={"alerts": alerts, "cutouts": False, "alerts_per_visit": 50}
                ),
                annotators=[ComponentSpec(use="history-summary")],
                filters=[
                    ComponentSpec(
                        use="adql",
                        name="bright",
                        config={
                            "expression": "mag < 18.5",
                            "outputs": [{"type": "files"}, {"type": "voevent"}],
                        },
                    ),
                    ComponentSpec(
                        use="adql",
                        name="north",
                        config={
                            "expression": "dec > 45",
                            "outputs": [{"type": "webhook", "url": receiver.url, "secret": SECRET}],
                        },
                    ),
                ],
                sinks=[
                    ComponentSpec(use="store"),
                    ComponentSpec(use="deliver", name="deliver", config={"allow_networks": LOOPBACK}),
                ],
            )
        )
        assert [s.use for s in spec.sinks] == ["store", "deliver"]
        summary = EmbeddedPipeline(spec, tmp_path).run()
    expected = {a.alert_id for a in synthetic_alerts(alerts) if a.mag is not None and a.mag < 18.5}
    north = {a.alert_id for a in synthetic_alerts(alerts) if a.dec > 45}
    assert expected
    assert north
    lines = (tmp_path / "matches" / "bright.jsonl").read_text().splitlines()
    assert {json.loads(line)["alert_id"] for line in lines} == expected
    packets = {p.stem for p in (tmp_path / "voevent" / "bright").glob("*.xml")}
    assert packets == {f"{a.survey}-{a.alert_id}" for a in synthetic_alerts(alerts) if a.alert_id in expected}
    assert {r["json"]["alert_id"] for r in receiver.received} == north
    ids = {
        a.alert_id: delivery_id("north", f"{a.survey}:{a.alert_id}", receiver.url)
        for a in synthetic_alerts(alerts)
    }
    assert all(r["headers"]["Starling-Delivery-Id"] == ids[r["json"]["alert_id"]] for r in receiver.received)
    assert summary.stats.stages["deliver"].failed == 0


def test_the_rate_cap_holds_back_past_its_limits() -> None:
    alerts = synthetic_alerts(400, alerts_per_visit=100)
    per_visit = RateCap(per_visit=10, per_minute=None)
    admitted = per_visit.admit(alerts)
    visits = {(a.survey, round(a.mjd, 6)) for a in alerts}
    assert len(admitted) == sum(
        min(10, sum(1 for a in alerts if (a.survey, round(a.mjd, 6)) == v)) for v in visits
    )
    assert per_visit.held_back == len(alerts) - len(admitted)
    assert per_visit.hit
    now = [0.0]
    per_minute = RateCap(per_visit=None, per_minute=50, clock=lambda: now[0])
    assert len(per_minute.admit(alerts[:80])) == 50
    assert per_minute.admit(alerts[80:90]) == []
    now[0] = 61.0  # a new minute
    assert len(per_minute.admit(alerts[90:100])) == 10
    assert per_minute.held_back == 40


def test_a_slow_webhook_does_not_hold_the_stage(tmp_path: Path) -> None:
    """Handing deliveries over returns at once; the endpoint's pace is the sender thread's business."""
    import time

    with WebhookReceiver() as receiver:
        original = receiver.server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

        def slow(handler: object) -> None:
            time.sleep(0.3)
            original(handler)

        receiver.server.RequestHandlerClass.do_POST = slow  # type: ignore[attr-defined]
        deliverer = WebhookDeliverer(tmp_path, allow=LOOPBACK)
        try:
            for n in range(20):
                deliverer.submit("slow", receiver.url, None, {"n": n}, 5.0, 3)
            deliverer.flush()
            assert len(receiver.received) < 20  # flush did not wait for the endpoint
            wait_until(lambda: len(receiver.received) == 20, 60, "the slow endpoint to take them all")
        finally:
            deliverer.close()
