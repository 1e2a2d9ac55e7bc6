"""Large parts of a component's config (a watchlist's targets, a watchmap's region) kept apart from the
pipeline description, and referred to by the digest of their content.

A pipeline description travels whole: to every worker at each change, into a file or a Kubernetes
Secret (1 MiB at most). A user's list of 100,000 targets must not: the controller keeps such a body in
its store, once, and the description holds only a reference to it::

    {"$body": "sha256:<64 hex digits>", "items": 100000}

A worker replaces each reference by the JSON value it names before it builds the component
(:class:`BodyResolver`), fetching what it does not hold yet and checking the content against the
digest, so a body can be cached forever and can never be swapped. ``items`` says how many entries the
body holds, so that counts and quotas need no fetch.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from starling.errors import ConfigError

BODY_KEY = "$body"
PREFIX = "sha256:"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


def encode_body(value: Any) -> bytes:
    """The one byte form of a body, so the same content always has the same digest."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def digest_of(data: bytes) -> str:
    return PREFIX + hashlib.sha256(data).hexdigest()


def item_count(value: Any) -> int:
    """How many entries a body holds: a list's length, or (a MOC) the items of all its lists."""
    if isinstance(value, dict):
        return sum(len(v) if isinstance(v, list) else 1 for v in value.values())
    return len(value) if isinstance(value, list) else 1


def make_reference(value: Any) -> tuple[dict[str, Any], bytes]:
    """The reference that stands for ``value`` in a config, and the bytes to keep under its digest."""
    data = encode_body(value)
    return {BODY_KEY: digest_of(data), "items": item_count(value)}, data


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(BODY_KEY), str)


def items(value: Any) -> int:
    """How many entries ``value`` holds, whether it is a body or a reference to one."""
    if is_reference(value):
        return int(value.get("items", 0))
    return item_count(value)


def references(value: Any) -> set[str]:
    """The digests of every body ``value`` refers to, at any depth."""
    if is_reference(value):
        return {value[BODY_KEY]}
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(references(v) for v in value))
    return set()


def resolve(value: Any, fetch: Callable[[str], Any]) -> Any:
    """``value`` with every reference replaced by the body it names (``fetch``: digest -> JSON value)."""
    if is_reference(value):
        return fetch(value[BODY_KEY])
    if isinstance(value, dict):
        return {k: resolve(v, fetch) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, fetch) for v in value]
    return value


def checked_body(digest: str, data: bytes) -> Any:
    """The JSON value of ``data``, if its digest is ``digest`` (ConfigError otherwise)."""
    if digest_of(data) != digest:
        raise ConfigError(f"the body fetched for {digest} does not match its digest")
    return json.loads(data)


class BodyResolver:
    """Resolves a worker's references: each body fetched once (``fetch``: digest -> bytes, raising
    an OutageError when its source cannot be reached, so the change is tried again, not refused),
    checked against its digest, and kept while a config still refers to it."""

    def __init__(self, fetch: Callable[[str], bytes] | None = None) -> None:
        self._fetch = fetch
        self._held: dict[str, Any] = {}
        self._lock = threading.Lock()

    def body(self, digest: str) -> Any:
        with self._lock:
            if digest in self._held:
                return self._held[digest]
        if self._fetch is None:
            raise ConfigError(
                f"the config refers to a stored body ({digest}), and this runtime has no controller "
                "to read it from (set STARLING_CONTROLLER)"
            )
        value = checked_body(digest, self._fetch(digest))
        with self._lock:
            self._held[digest] = value
        return value

    def resolve(self, config: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = resolve(config, self.body)
        return resolved

    def keep_only(self, configs: list[dict[str, Any]]) -> None:
        """Forget the bodies none of ``configs`` refers to any longer."""
        wanted = set().union(*(references(c) for c in configs)) if configs else set()
        with self._lock:
            for digest in set(self._held) - wanted:
                del self._held[digest]
