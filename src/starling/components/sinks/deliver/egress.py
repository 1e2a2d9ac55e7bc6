"""The egress check at connection time: a webhook connects only to addresses it may reach.

A URL is checked when it is submitted (:class:`~starling.components.outputs.EgressPolicy`), but a name
can resolve to another address later (DNS rebinding), so every connection is checked again here: the
host is resolved, **every** address it resolves to must pass (a name that also resolves to a loopback
address is refused whole), and the socket connects to one of the addresses checked, never to the name
(which could resolve anew). TLS still verifies the certificate against the name in the URL. Redirects
are never followed (the sender treats a 3xx as a failure), so this is the only way out.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore

from starling.components.outputs import EgressPolicy

# getaddrinfo's shape, so that a test can make a name resolve where it wants.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class EgressRefused(httpcore.ConnectError):
    """A connection the egress policy refuses; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def checked_addresses(
    policy: EgressPolicy, host: str, port: int, resolver: Resolver = socket.getaddrinfo
) -> list[str]:
    """The addresses ``host`` resolves to, once each has passed the policy; else :class:`EgressRefused`."""
    name = host.strip("[]")
    refusal = policy.host_refusal(name)
    if refusal is not None:
        raise EgressRefused(refusal)
    try:
        found = resolver(name, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"{name} does not resolve ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))
    if not addresses:
        raise httpcore.ConnectError(f"{name} resolves to no address")
    if policy.allows_host(name):
        return addresses  # a host the operator allows by name may resolve anywhere
    for address in addresses:
        refusal = policy.address_refusal(ipaddress.ip_address(address))
        if refusal is not None:
            raise EgressRefused(f"{name} resolves to {address}: {refusal}" if address != name else refusal)
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = socket.getaddrinfo) -> None:
        self.policy = policy
        self.resolver = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(self.policy, host, port, self.resolver)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise EgressRefused("webhooks do not connect to local sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
