"""A step the controller takes every few seconds on a thread of its own (the autoscaler's, the shaper's)."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger("starling.control.loop")


class PeriodicLoop(ABC):
    """Calls ``step()`` every ``interval_s`` between ``start()`` and ``stop()``. A step that fails is logged
    and the loop goes on: the next step reads afresh."""

    def __init__(self, name: str, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    @abstractmethod
    def step(self) -> Any: ...

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:
                log.exception("%s step failed", self._thread.name)
