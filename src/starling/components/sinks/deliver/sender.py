"""One attempt at one webhook delivery: a signed JSON POST through the egress-checked connection pool.

Each POST carries ``Starling-Delivery-Id`` (also as ``X-Starling-Delivery``: the same on every attempt
and redelivery), ``Starling-Delivery-Attempt``, ``X-Starling-Filter`` and, when the output has a secret,
``X-Starling-Signature: sha256=<hex HMAC-SHA256 of the body>``. Only a 2xx is a success. A redirect is
never followed (it could lead anywhere) and, like an address the egress policy refuses, is a failure
that retrying at once will not mend (``permanent``). At most 64 KiB of a response is read.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
from dataclasses import dataclass

import httpcore
import httpx

from starling.components.outputs import EgressPolicy
from starling.components.sinks.deliver.egress import EgressRefused, GuardedBackend, Resolver
from starling.components.sinks.deliver.outbox import Delivery

_READ_AT_MOST = 64 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    reason: str = ""
    permanent: bool = False


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def guarded_pool(
    policy: EgressPolicy,
    senders: int,
    resolver: Resolver = socket.getaddrinfo,
    ssl_context: ssl.SSLContext | None = None,
) -> httpcore.ConnectionPool:
    """A connection pool that reaches only what the policy allows (no proxy, no redirects, no retries);
    TLS verifies the certificate against the name in the URL (certifi's authorities unless told)."""
    return httpcore.ConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(),
        max_connections=2 * senders,
        max_keepalive_connections=senders,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(policy, resolver),
    )


def headers(delivery: Delivery, attempt: int) -> list[tuple[str, str]]:
    found = [
        ("Content-Type", "application/json"),
        ("User-Agent", "starling-webhook"),
        ("Starling-Delivery-Id", delivery.id),
        ("X-Starling-Delivery", delivery.id),
        ("Starling-Delivery-Attempt", str(attempt)),
        ("X-Starling-Filter", delivery.filter),
    ]
    if delivery.secret:
        found.append(("X-Starling-Signature", signature(delivery.secret, delivery.body)))
    return found


def post(pool: httpcore.ConnectionPool, policy: EgressPolicy, delivery: Delivery, attempt: int) -> Outcome:
    """Make one attempt; never raises."""
    refusal = policy.url_refusal(delivery.url)
    if refusal is not None:
        return Outcome(False, f"refused: {refusal}", permanent=True)
    timeout = delivery.timeout_s
    try:
        with pool.stream(
            "POST",
            delivery.url,
            headers=headers(delivery, attempt),
            content=delivery.body,
            extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
        ) as response:
            status = response.status
            read = 0
            for chunk in response.iter_stream():
                read += len(chunk)
                if read > _READ_AT_MOST:
                    break
    except EgressRefused as exc:
        return Outcome(False, f"refused: {exc.reason}", permanent=True)
    except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}", permanent=True)
    except httpcore.TimeoutException as exc:
        return Outcome(False, f"timeout ({type(exc).__name__})")
    except Exception as exc:  # connection refused, reset, TLS...: the endpoint's failure, never the sender's
        detail = str(exc).strip()
        return Outcome(False, f"{type(exc).__name__}: {detail}"[:160] if detail else type(exc).__name__)
    if 200 <= status < 300:
        return Outcome(True)
    if 300 <= status < 400:
        return Outcome(False, f"HTTP {status}: redirect not followed", permanent=True)
    return Outcome(False, f"HTTP {status}")
