"""Webhooks reach only the public internet and what the operator allows: refused on submission where the
URL shows it, and again at every connection on the addresses a name resolves to; redirects not followed.
The receivers are real servers on 127.0.0.1, so every refusal here is of an endpoint that would answer."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from starling.assembly import route_deliveries
from starling.components.outputs import ALLOW_ENV, EgressPolicy, WebhookOutput
from starling.components.sinks.deliver.egress import EgressRefused, checked_addresses
from starling.components.sinks.deliver.sink import DeliverConfig
from starling.components.sinks.deliver.webhook import WebhookDeliverer
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec, PipelineSpec
from tests.components.sinks.endpoints import Recorder, recorder
from tests.support.helpers import wait_until

LOOPBACK = ["127.0.0.1/32"]
PUBLIC = "93.184.216.34"


@pytest.fixture(autouse=True)
def _no_operator_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recorder() as found:
        yield found


def _variants(port: int) -> dict[str, tuple[str, str]]:
    """Filter name -> (URL reaching 127.0.0.1:port or an internal address, what the refusal says)."""
    return {
        "name": (f"http://localhost:{port}/hook", "internal host name"),
        "mapped": (f"http://[::ffff:127.0.0.1]:{port}/hook", "IPv6 form of 127.0.0.1, a loopback address"),
        "decimal": (f"http://2130706433:{port}/hook", "written as a number"),
        "hex": (f"http://0x7f000001:{port}/hook", "written as a number"),
        "octal": (f"http://0177.0.0.1:{port}/hook", "written as a number"),
        "short": (f"http://127.1:{port}/hook", "written as a number"),
        "ipv6": (f"http://[::1]:{port}/hook", "loopback address"),
        "metadata": ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        "private": ("http://10.0.0.1/hook", "private address"),
        "unspecified": (f"http://0.0.0.0:{port}/hook", "unspecified address"),
        "cluster": ("http://starling-controller:8765/filters", "without a domain"),
        "scheme": ("file:///etc/passwd", "only http and https"),
    }


@pytest.mark.parametrize("name", list(_variants(8080)))
def test_a_submitted_url_is_refused_with_its_reason(name: str) -> None:
    url, reason = _variants(8080)[name]
    with pytest.raises(ValidationError) as refused:
        WebhookOutput.model_validate({"type": "webhook", "url": url})
    assert reason in str(refused.value) or name == "scheme"  # pydantic names the scheme itself


def test_public_urls_pass_and_the_operator_allows_more(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WebhookOutput.model_validate({"type": "webhook", "url": "https://hooks.example.org/x?t=1"})
    local = {"type": "webhook", "url": "http://10.20.3.4:8080/hook"}
    with pytest.raises(ValidationError, match=r"10\.20\.3\.4 is a private address"):
        WebhookOutput.model_validate(local)
    assert WebhookOutput.model_validate(local, context={"egress_allow": ["10.20.0.0/16"]})
    monkeypatch.setenv(ALLOW_ENV, "10.20.0.0/16, hooks.svc")
    assert WebhookOutput.model_validate(local)
    assert WebhookOutput.model_validate({"type": "webhook", "url": "http://hooks.svc/x"})
    # A spelling that hides an address is never accepted, allowed network or not.
    with pytest.raises(ValidationError, match="written as a number"):
        WebhookOutput.model_validate({"type": "webhook", "url": "http://0x0a140304/"})


def test_the_deliver_sink_checks_its_routes_against_its_own_allow_list() -> None:
    routes = {"north": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]}
    with pytest.raises(ValidationError, match="loopback"):
        DeliverConfig.model_validate({"routes": routes})
    config = DeliverConfig.model_validate({"routes": routes, "allow_networks": LOOPBACK})
    (output,) = config.routes["north"]
    assert isinstance(output, WebhookOutput)
    assert str(output.url) == "http://127.0.0.1:9/hook"
    with pytest.raises(ValidationError, match="neither a network nor a host name"):
        DeliverConfig.model_validate({"allow_networks": ["not a network"]})


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    return resolve


def test_every_address_a_name_resolves_to_is_checked() -> None:
    """The one check function, with names made to resolve where a test wants (no DNS needed)."""
    table = {
        "hooks.example.org": [PUBLIC],
        "rebound.example.org": [PUBLIC, "127.0.0.1"],  # one bad address refuses the name
        "metadata.example.org": ["::ffff:169.254.169.254"],
        "in-cluster.example.org": ["10.1.2.3"],
    }
    resolve, policy = _resolver(table), EgressPolicy()
    assert checked_addresses(policy, "hooks.example.org", 443, resolve) == [PUBLIC]
    with pytest.raises(EgressRefused, match=r"rebound\.example\.org resolves to 127\.0\.0\.1: .* loopback"):
        checked_addresses(policy, "rebound.example.org", 443, resolve)
    with pytest.raises(EgressRefused, match=r"IPv6 form of 169\.254\.169\.254, a link-local address"):
        checked_addresses(policy, "metadata.example.org", 80, resolve)
    with pytest.raises(EgressRefused, match="private"):
        checked_addresses(policy, "in-cluster.example.org", 80, resolve)
    allowed = EgressPolicy.of(["10.0.0.0/8", "rebound.example.org"])
    assert checked_addresses(allowed, "in-cluster.example.org", 80, resolve) == ["10.1.2.3"]
    assert checked_addresses(allowed, "rebound.example.org", 80, resolve) == [PUBLIC, "127.0.0.1"]


def _deliverer(tmp_path: Path, allow: list[str], **options: Any) -> WebhookDeliverer:
    return WebhookDeliverer(tmp_path / "hooks", backoff_s=0.01, allow=allow, **options)


def test_every_ssrf_variant_is_refused_at_delivery_and_counted_with_its_reason(
    tmp_path: Path, receiver: Recorder
) -> None:
    variants = _variants(receiver.port)
    deliverer = _deliverer(tmp_path, allow=[])
    try:
        for name, (url, _) in variants.items():
            deliverer.submit(name, url, None, {"n": 1}, 2.0, max_attempts=3)
        deliverer.flush()
        wait_until(lambda: len(deliverer.counters()["failed"]) == len(variants), 30, "every refusal")
        counters = deliverer.counters()
    finally:
        deliverer.close()
    assert receiver.requests == []  # nothing reached the server on 127.0.0.1
    for name, (_, reason) in variants.items():
        assert counters["failed"][name] == 1
        assert counters["waiting"][name] == 1  # kept, as every failed delivery is
        (refusal,) = counters["reasons"][name]  # one attempt: refused at once, not retried
        assert refusal.startswith("refused: "), (name, refusal)
        assert reason in refusal, (name, refusal)


def test_the_allow_list_opens_the_network_it_names_and_no_more(tmp_path: Path, receiver: Recorder) -> None:
    deliverer = _deliverer(tmp_path, allow=LOOPBACK)
    try:
        deliverer.submit("allowed", receiver.url, None, {"n": 1}, 2.0, 3)
        deliverer.submit("decimal", f"http://2130706433:{receiver.port}/hook", None, {"n": 2}, 2.0, 3)
        deliverer.submit("ipv6", f"http://[::1]:{receiver.port}/hook", None, {"n": 3}, 2.0, 3)
        deliverer.flush()
        wait_until(lambda: len(deliverer.counters()["failed"]) == 2, 30, "the two refusals")
        counters = deliverer.counters()
    finally:
        deliverer.close()
    assert [r.body for r in receiver.requests] == [b'{"n":1}']
    assert counters["delivered"] == {"allowed": 1}
    assert set(counters["failed"]) == {"decimal", "ipv6"}


def test_a_name_is_checked_on_the_address_it_resolves_to_and_connected_there(
    tmp_path: Path, receiver: Recorder
) -> None:
    resolve = _resolver({"hooks.example.org": ["127.0.0.1"]})
    url = f"http://hooks.example.org:{receiver.port}/hook"
    refusing = _deliverer(tmp_path / "a", allow=[], resolver=resolve)
    try:
        refusing.submit("north", url, None, {"n": 1}, 2.0, 3)
        refusing.flush()
        wait_until(lambda: refusing.counters()["failed"], 30, "the refusal")
        (reason,) = refusing.counters()["reasons"]["north"]
    finally:
        refusing.close()
    assert reason == "refused: hooks.example.org resolves to 127.0.0.1: 127.0.0.1 is a loopback address"
    assert receiver.requests == []
    allowing = _deliverer(tmp_path / "b", allow=LOOPBACK, resolver=resolve)
    try:
        allowing.submit("north", url, None, {"n": 1}, 2.0, 3)
        allowing.flush()
        wait_until(lambda: receiver.requests, 30, "the delivery")
    finally:
        allowing.close()
    assert receiver.requests[0].headers["Host"] == f"hooks.example.org:{receiver.port}"


def test_a_redirect_is_never_followed(tmp_path: Path) -> None:
    with recorder() as inside, recorder(lambda n: (307, {"Location": inside.url})) as redirecting:
        deliverer = _deliverer(tmp_path, allow=LOOPBACK)  # both allowed: still not followed
        try:
            deliverer.submit("north", redirecting.url, None, {"n": 1}, 2.0, max_attempts=5)
            deliverer.submit("south", redirecting.url.replace("/hook", "/meta"), None, {"n": 2}, 2.0, 5)
            deliverer.flush()
            wait_until(lambda: len(deliverer.counters()["failed"]) == 2, 30, "the redirects to fail")
            counters = deliverer.counters()
        finally:
            deliverer.close()
    assert inside.requests == []
    assert len(redirecting.requests) == 2  # once each: a redirect is not retried at once
    assert counters["reasons"]["north"] == {"HTTP 307: redirect not followed": 1}
    assert counters["waiting"] == {"north": 1, "south": 1}


def test_the_deliver_sink_counts_failed_webhooks_with_their_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedded run whose one webhook redirects: its matches are counted failed, with the reason, in
    the deliver sink's counters (the ones /status shows), and kept for redelivery."""
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")
    with recorder(lambda n: (302, {"Location": "http://169.254.169.254/"})) as redirecting:
        filters = [
            ComponentSpec(
                use="adql",
                name="north",
                config={"expression": "dec > 45", "outputs": [{"type": "webhook", "url": redirecting.url}]},
            )
        ]
        spec = route_deliveries(
            PipelineSpec(
                batch_size=200,
                source=ComponentSpec(use="synthetic", config={"alerts": 300, "cutouts": False}),
                filters=filters,
                sinks=[ComponentSpec(use="deliver", name="deliver", config={"allow_networks": LOOPBACK})],
            )
        )
        described = EmbeddedPipeline(spec, tmp_path).run().outputs["deliver"]
    failed = described["failed"]["north"]
    assert failed >= 1
    assert described["webhook_failure_reasons"] == {"north": {"HTTP 302: redirect not followed": failed}}
    assert described["waiting"] == {"north": failed}
    assert described["delivered"].get("north", 0) == 0
    assert len(redirecting.requests) == failed  # none followed, none retried at once


def test_tls_verifies_the_name_in_the_url_though_the_socket_goes_to_the_checked_address(
    tmp_path: Path,
) -> None:
    """The connection goes to the address checked, never to the name resolved anew; the certificate is
    still checked against the name (SNI), so an address in the URL does not pass for the name."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    name = "hooks.example.org"
    subject = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    make = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject]
    subprocess.run([*make, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    with recorder(tls=server_side) as receiver:
        resolve = _resolver({"hooks.example.org": ["127.0.0.1"], "127.0.0.1": ["127.0.0.1"]})
        deliverer = _deliverer(tmp_path / "hooks", allow=LOOPBACK, resolver=resolve, ssl_context=trusting)
        try:
            deliverer.submit(
                "by-name", f"https://hooks.example.org:{receiver.port}/hook", None, {"n": 1}, 2.0, 1
            )
            deliverer.submit("by-address", f"https://127.0.0.1:{receiver.port}/hook", None, {"n": 2}, 2.0, 1)
            deliverer.flush()
            wait_until(lambda: deliverer.counters()["failed"], 30, "the address to be refused by TLS")
            wait_until(lambda: deliverer.counters()["delivered"], 30, "the name to be delivered")
            counters = deliverer.counters()
        finally:
            deliverer.close()
    assert counters["delivered"] == {"by-name": 1}
    (reason,) = counters["reasons"]["by-address"]
    assert "CERTIFICATE_VERIFY_FAILED" in reason
    assert [r.headers["Host"] for r in receiver.requests] == [f"hooks.example.org:{receiver.port}"]
