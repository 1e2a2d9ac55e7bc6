"""Secrets are write-only: what a configuration holds as a secret is never shown again.

A webhook's HMAC secret, a SASL or TLS-key password in the Kafka client settings, a token: accepted
when a user or an operator gives them, used where they are needed, and replaced by ``REDACTED`` in
every view of a configuration (the controller's pipeline and filters, a worker's status and config).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REDACTED = "<redacted: a write-only secret>"

# A key naming one of these holds a secret (matched as a part of the key, any case).
_SECRET_WORDS = ("secret", "password", "token", "credential", "private", "key.pem", "api_key", "apikey")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_secrets(value: Any) -> Any:
    """``value`` with every secret (a non-empty value under a secret's key) replaced by ``REDACTED``."""
    if isinstance(value, dict):
        return {
            k: REDACTED if is_secret_key(str(k)) and v not in (None, "") else redact_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    return value


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and only its owner can read it (created so, never chmod-ed after the
    fact, so there is no moment it is readable by others); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(descriptor)
    path.chmod(0o600)  # a file made before this rule was kept
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only, atomically (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    staged.replace(path)
