"""Client quotas of a Kafka user (``producer_byte_rate``, ``consumer_byte_rate``), set and read.

librdkafka, and so confluent-kafka's ``AdminClient``, has no client-quota API: these speak Kafka's own
protocol for the two requests it takes (``AlterClientQuotas`` and ``DescribeClientQuotas``, version 0),
over one connection authenticated as librdkafka would be from the same settings (``security.protocol``
PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; ``sasl.mechanism(s)`` SCRAM-SHA-256 or SCRAM-SHA-512;
``ssl.ca.location``). The password is used for the SCRAM exchange and is never part of an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starling.errors import StarlingError

_SASL_HANDSHAKE, _SASL_AUTHENTICATE = 17, 36
_DESCRIBE_CLIENT_QUOTAS, _ALTER_CLIENT_QUOTAS = 48, 49
T = TypeVar("T")
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_SCRAM_MIN_ITERATIONS, _SCRAM_MAX_ITERATIONS = 4096, 16384  # what Kafka allows a SCRAM credential
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate")


class ClientQuotaError(StarlingError):
    """Kafka could not be reached, refused the login, or refused the quota."""


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _array(items: list[bytes]) -> bytes:
    return struct.pack(">i", len(items)) + b"".join(items)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        size = self.take(">h")
        if size < 0:
            return None
        self.at += size
        return self.data[self.at - size : self.at].decode()

    def blob(self) -> bytes:
        size = self.take(">i")
        self.at += max(size, 0)
        return self.data[self.at - max(size, 0) : self.at]


class _Connection:
    """One connection to a broker, requests answered in order."""

    def __init__(self, config: Mapping[str, Any], timeout_s: float) -> None:
        protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
        host, _, port = str(config["bootstrap.servers"]).split(",")[0].strip().rpartition(":")
        try:
            raw = socket.create_connection((host, int(port)), timeout=timeout_s)
        except OSError as exc:
            raise ClientQuotaError(f"cannot reach Kafka at {host}:{port}: {exc}") from exc
        self.socket: socket.socket = raw
        self.correlation = 0
        try:
            if protocol in ("SSL", "SASL_SSL"):
                context = ssl.create_default_context(cafile=config.get("ssl.ca.location"))
                self.socket = context.wrap_socket(raw, server_hostname=host)
            if protocol.startswith("SASL"):
                self._scram(config)
        except ClientQuotaError:
            raw.close()
            raise
        except (OSError, ValueError, KeyError, binascii.Error, struct.error) as exc:  # TLS, a garbled answer
            raw.close()
            raise ClientQuotaError(f"cannot log in to Kafka at {host}:{port}: {type(exc).__name__}") from exc

    def request(self, api_key: int, version: int, body: bytes) -> _Reader:
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _string("starling-quotas")
        message = header + body
        try:
            self.socket.sendall(struct.pack(">i", len(message)) + message)
            size = struct.unpack(">i", self._exactly(4))[0]
            reader = _Reader(self._exactly(size))
        except (OSError, struct.error) as exc:
            raise ClientQuotaError(f"Kafka did not answer: {exc}") from exc
        if reader.take(">i") != self.correlation:
            raise ClientQuotaError("Kafka answered another request")
        return reader

    def _exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self.socket.recv(min(left, 65536))
            if not chunk:
                raise ClientQuotaError("Kafka closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _authenticate(self, payload: bytes) -> bytes:
        reply = self.request(_SASL_AUTHENTICATE, 0, struct.pack(">i", len(payload)) + payload)
        error, message = reply.take(">h"), reply.string()
        if error:
            raise ClientQuotaError(f"Kafka refused the login (error {error}: {message})")
        return reply.blob()

    def _scram(self, config: Mapping[str, Any]) -> None:
        """RFC 5802's exchange (SCRAM), as Kafka frames it: a handshake, then two authenticate requests."""
        mechanism = str(config.get("sasl.mechanism") or config.get("sasl.mechanisms") or "").upper()
        if mechanism not in _HASHES:
            raise ClientQuotaError(f"client quotas need SCRAM-SHA-256 or SCRAM-SHA-512, not {mechanism!r}")
        reply = self.request(_SASL_HANDSHAKE, 1, _string(mechanism))
        if reply.take(">h"):
            raise ClientQuotaError(f"Kafka does not take {mechanism} on this listener")
        digest = _HASHES[mechanism]
        user = str(config["sasl.username"]).replace("=", "=3D").replace(",", "=2C")
        nonce = base64.b64encode(secrets.token_bytes(24)).decode()
        first_bare = f"n={user},r={nonce}"
        server_first = self._authenticate(f"n,,{first_bare}".encode()).decode()
        fields = dict(part.split("=", 1) for part in server_first.split(","))
        if not fields.get("r", "").startswith(nonce):
            raise ClientQuotaError("Kafka's SCRAM answer does not continue this exchange")
        iterations = int(fields["i"])
        if not _SCRAM_MIN_ITERATIONS <= iterations <= _SCRAM_MAX_ITERATIONS:  # Kafka's bounds: no CPU sink
            raise ClientQuotaError(f"Kafka's SCRAM answer asks for {iterations} iterations")
        salted = hashlib.pbkdf2_hmac(
            digest, str(config["sasl.password"]).encode(), base64.b64decode(fields["s"]), iterations
        )
        final_bare = f"c=biws,r={fields['r']}"
        signed = f"{first_bare},{server_first},{final_bare}".encode()
        client_key = hmac.digest(salted, b"Client Key", digest)
        signature = hmac.digest(hashlib.new(digest, client_key).digest(), signed, digest)
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
        server_final = self._authenticate(f"{final_bare},p={proof}".encode()).decode()
        expected = hmac.digest(hmac.digest(salted, b"Server Key", digest), signed, digest)
        if not hmac.compare_digest(server_final, f"v={base64.b64encode(expected).decode()}"):
            raise ClientQuotaError("Kafka's SCRAM signature is wrong: not the broker expected")

    def close(self) -> None:
        self.socket.close()


def _user_entity(user: str) -> bytes:
    return _array([_string("user") + _string(user)])


def _ask(config: Mapping[str, Any], api_key: int, body: bytes, timeout_s: float) -> _Reader:
    """One request on a connection of its own, logged in from ``config``."""
    connection = _Connection(config, timeout_s)
    try:
        return connection.request(api_key, 0, body)
    finally:
        connection.close()


def _read(reply: _Reader, parse: Callable[[_Reader], T]) -> T:
    """``parse`` of a reply; a reply cut short or garbled is a ClientQuotaError, not a crash."""
    try:
        return parse(reply)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ClientQuotaError(f"Kafka's answer cannot be read: {exc}") from exc


def set_user_quotas(
    config: Mapping[str, Any], user: str, rates: Mapping[str, float | None], timeout_s: float = 15.0
) -> None:
    """Set (a number) or remove (None) each of ``rates`` (``producer_byte_rate``, ``consumer_byte_rate``,
    bytes per second) for the principal ``User:<user>``."""
    ops = [
        _string(key) + struct.pack(">d?", float(value or 0.0), value is None) for key, value in rates.items()
    ]
    body = _array([_user_entity(user) + _array(ops)]) + struct.pack(">?", False)

    def altered(reply: _Reader) -> None:
        reply.take(">i")  # throttle time
        for _ in range(reply.take(">i")):
            error, message = reply.take(">h"), reply.string()
            for _ in range(reply.take(">i")):
                reply.string(), reply.string()
            if error:
                raise ClientQuotaError(f"Kafka refused the quotas of {user!r} (error {error}: {message})")

    _read(_ask(config, _ALTER_CLIENT_QUOTAS, body, timeout_s), altered)


def user_quotas(config: Mapping[str, Any], user: str, timeout_s: float = 15.0) -> dict[str, float]:
    """The quotas set for ``User:<user>`` itself (not the defaults it would fall back on)."""
    body = _array([_string("user") + struct.pack(">b", 0) + _string(user)]) + struct.pack(">?", True)

    def described(reply: _Reader) -> dict[str, float]:
        reply.take(">i")
        error, message = reply.take(">h"), reply.string()
        if error:
            raise ClientQuotaError(f"Kafka refused to describe the quotas of {user!r} ({error}: {message})")
        found: dict[str, float] = {}
        for _ in range(max(reply.take(">i"), 0)):
            for _ in range(reply.take(">i")):
                reply.string(), reply.string()
            for _ in range(reply.take(">i")):
                key = reply.string() or ""
                found[key] = reply.take(">d")
        return found

    return _read(_ask(config, _DESCRIBE_CLIENT_QUOTAS, body, timeout_s), described)
