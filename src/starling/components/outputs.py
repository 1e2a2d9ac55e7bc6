"""Where a filter's matches go: one or several outputs per filter, delivered by the distribute stage.

The one model the kinds of components share: an ``adql`` filter declares its outputs, the ``deliver``
sink (named :data:`DELIVER` in every pipeline) sends them, and pipeline assembly routes one to the other.

A webhook may only reach the public internet (:class:`EgressPolicy`): its URL is refused on arrival
when it names a loopback, link-local, private, unspecified, multicast or reserved address (an IPv6 form
of one included), an address spelled as an integer, in octal or in hexadecimal, or an internal host name
(``localhost``, a name without a domain, ``.internal``, ``.local``, ``.svc`` ...), unless the operator
allows it. The ``deliver`` sink checks again, on the addresses a name resolves to, at every connection.

The operator's allow-list (networks such as ``10.20.0.0/16`` or host names) is read from
``STARLING_EGRESS_ALLOW`` (comma-separated) wherever outputs are validated, and from the validation
context (``{"egress_allow": [...]}``) when the caller gives one; the ``deliver`` sink adds its own
``allow_networks``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator

# The name of the distribute stage's sink that delivers the filters' outputs.
DELIVER = "deliver"


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaOutput(_Output):
    """A Kafka topic of the filter's own (default ``<prefix>.filter.<filter name>``)."""

    type: Literal["kafka"]
    topic: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    format: Literal["avro", "json"] = Field("avro", description="Avro (schema starling.v1.alert) or JSON")
    cutouts: bool = Field(False, description="include the cutouts (Avro: bytes; JSON: base64)")


class WebhookOutput(_Output):
    """An HTTP POST of JSON per match, signed, retried with back-off; failures kept for redelivery."""

    type: Literal["webhook"]
    url: HttpUrl
    secret: str | None = Field(
        None, min_length=16, description="HMAC-SHA256 key: the X-Starling-Signature header signs the body"
    )
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(5, ge=1, le=20)

    @field_validator("url", mode="before")
    @classmethod
    def _as_written(cls, value: Any, info: ValidationInfo) -> Any:
        """The URL as the user wrote it (before it is normalised: ``2130706433`` becomes ``127.0.0.1``)."""
        if isinstance(value, str):
            _refuse(submission_policy(info.context).url_refusal(value))
        return value

    @field_validator("url")
    @classmethod
    def _as_parsed(cls, value: HttpUrl, info: ValidationInfo) -> HttpUrl:
        _refuse(submission_policy(info.context).host_refusal(value.host or ""))
        return value


class VOEventOutput(_Output):
    """VOEvent 2.0 packets, one per match, as files (and on a topic when ``topic`` is set)."""

    type: Literal["voevent"]
    role: Literal["observation", "test"] = "observation"
    topic: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")


class FilesOutput(_Output):
    """JSON lines and Avro files under the output directory, as the ``files`` sink writes them."""

    type: Literal["files"]


Output = Annotated[KafkaOutput | WebhookOutput | VOEventOutput | FilesOutput, Field(discriminator="type")]


# -- where a webhook may go ------------------------------------------------------------------------

ALLOW_ENV = "STARLING_EGRESS_ALLOW"
CONTEXT_KEY = "egress_allow"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PART = r"(0x[0-9a-f]*|[0-9]+)"
_NUMERIC = re.compile(rf"^{_PART}(\.{_PART}){{0,3}}$", re.IGNORECASE)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"^{_OCTET}(\.{_OCTET}){{3}}$")
_INTERNAL_NAMES = ("localhost", "localhost.localdomain")
_INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".home.arpa",
    ".svc",
    ".cluster.local",
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _refuse(refusal: str | None) -> None:
    if refusal is not None:
        raise ValueError(f"webhook URL refused: {refusal}")


def numeric_spelling(host: str) -> bool:
    """An IPv4 address written otherwise than as four decimal numbers (``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``, ``127.1``): resolvers read these as addresses, URL checks often as names."""
    return bool(_NUMERIC.match(host)) and not _DOTTED_QUAD.match(host)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), which is where it leads."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo is not None else None


def _category(address: IPAddress) -> str | None:
    """What makes an address unfit for a webhook (None: a public unicast address)."""
    checks = (
        ("the unspecified address", address.is_unspecified),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("a site-local address", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("not a globally routable address", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which hosts a webhook may reach: public addresses, and what the operator allows."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @staticmethod
    def of(entries: Iterable[str]) -> EgressPolicy:
        """From allow-list entries: networks (``10.0.0.0/8``, ``127.0.0.1``) or host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", entry) or numeric_spelling(entry):
                    raise ValueError(
                        f"allow-list entry {entry!r} is neither a network nor a host name"
                    ) from None
                hosts.add(entry.rstrip(".").lower())
        return EgressPolicy(tuple(networks), frozenset(hosts))

    def with_entries(self, entries: Iterable[str]) -> EgressPolicy:
        more = EgressPolicy.of(entries)
        return EgressPolicy(self.networks + more.networks, self.hosts | more.hosts)

    def allows_host(self, host: str) -> bool:
        return host.strip("[]").rstrip(".").lower() in self.hosts

    def _allowed(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def address_refusal(self, address: IPAddress | str) -> str | None:
        """Why a webhook may not connect to this address (None: it may)."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if self._allowed(ip):
            return None
        inner = _embedded_ipv4(ip)
        if inner is not None:
            if self._allowed(inner):
                return None
            inner_category = _category(inner)
            if inner_category is not None:
                return f"{ip} is an IPv6 form of {inner}, {inner_category}"
        category = _category(ip)
        return None if category is None else f"{ip} is {category}"

    def host_refusal(self, host: str) -> str | None:
        """Why a URL naming this host is refused, before any name is resolved (None: not refused)."""
        name = host.strip("[]").rstrip(".").lower()
        if not name:
            return "the URL names no host"
        if name in self.hosts:
            return None
        if numeric_spelling(name):
            return f"{host} is an IP address written as a number (decimal, octal or hex): use dotted decimal"
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return _name_refusal(name)
        return self.address_refusal(address)

    def url_refusal(self, url: str) -> str | None:
        """Why this URL is refused, before any name is resolved (None: not refused)."""
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
            _ = parts.port  # an invalid port raises
        except ValueError as exc:
            return f"not a valid URL ({exc})"
        if parts.scheme.lower() not in ("http", "https"):
            return f"only http and https URLs are delivered, not {parts.scheme or 'a URL without a scheme'}"
        return self.host_refusal(host or "")


def _name_refusal(name: str) -> str | None:
    if name in _INTERNAL_NAMES or name.endswith(_INTERNAL_SUFFIXES):
        return f"{name} is an internal host name"
    if "." not in name:
        return f"{name} is a host name without a domain (it would resolve inside the cluster)"
    return None


@lru_cache(maxsize=64)
def _policy(entries: tuple[str, ...]) -> EgressPolicy:
    return EgressPolicy.of(entries)


def operator_allow() -> tuple[str, ...]:
    """The operator's allow-list from the environment (``STARLING_EGRESS_ALLOW``, comma-separated)."""
    return tuple(e.strip() for e in os.environ.get(ALLOW_ENV, "").split(",") if e.strip())


def submission_policy(context: Any = None) -> EgressPolicy:
    """The policy a submitted URL is checked against: the environment's allow-list, and the validation
    context's (``{"egress_allow": [...]}``) when there is one."""
    extra = context.get(CONTEXT_KEY, ()) if isinstance(context, dict) else ()
    return _policy((*operator_allow(), *extra))
