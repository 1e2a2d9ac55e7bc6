"""Dead letters: what could not be processed, kept whole with the reason, and counted.

Each dead letter is one JSON line: when, where it came from (origin), which stage and component
refused it, the reason in words, and the original message bytes in base64, so that nothing is lost
and it can be replayed once the cause is fixed (:func:`read_dead_letters` gives the bytes back).
"""

from __future__ import annotations

import base64
import json
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_REASONS = 100
_REASON_CHARS = 300


def count_reason(counter: Counter[str], reason: str, prefix: str) -> None:
    """Count one failure by its reason, keeping at most MAX_REASONS distinct reasons (a reason that
    names an alert is new each time; past the limit they are counted as ``<prefix>: other reasons``)."""
    key = f"{prefix}: {reason}"[:_REASON_CHARS]
    if key not in counter and len(counter) >= MAX_REASONS:
        key = f"{prefix}: other reasons"
    counter[key] += 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    origin: str
    stage: str
    component: str
    reason: str
    payload: bytes


class DeadLetterOutput(ABC):
    """Where dead letters go; every output counts them by reason."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(self.by_reason.values())

    def add(self, letter: DeadLetter) -> None:
        self.write(letter)
        count_reason(self.by_reason, letter.reason, f"{letter.stage}/{letter.component}")

    @abstractmethod
    def write(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make the letters written so far durable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the output."""

    @property
    def location(self) -> str:
        return ""


class DeadLetterFile(DeadLetterOutput):
    """Appends dead letters to a JSON-lines file (opened on the first letter)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._handle: IO[str] | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    def write(self, letter: DeadLetter) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "origin": letter.origin,
            "stage": letter.stage,
            "component": letter.component,
            "reason": letter.reason,
            "payload_base64": base64.b64encode(letter.payload).decode("ascii"),
        }
        self._handle.write(json.dumps(entry) + "\n")

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_dead_letters(path: Path) -> Iterator[DeadLetter]:
    """The dead letters of a file, payloads decoded back to bytes."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            yield DeadLetter(
                origin=entry["origin"],
                stage=entry["stage"],
                component=entry["component"],
                reason=entry["reason"],
                payload=base64.b64decode(entry["payload_base64"]),
            )
