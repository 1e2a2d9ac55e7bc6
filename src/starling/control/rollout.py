"""Each stage's replicas brought to the stage's latest component list, and a change told live only
when it is.

Every change of a stage's components is made at a version of the desired pipeline. One reconciler per
stage (a thread, :class:`StageRollout`) hands the latest list, with that version, to each replica that
has neither applied it nor has it pending (``PUT /components``, the version in a header), and reads
the replicas' status: each reports the pipeline version of the list it runs
(``applied_pipeline_version``; a replica started from the pipeline file reports the file's version).

A change made at version v is live once every replica of its stage that runs (as the backend lists
them) has applied a version of at least v: a newer list pending on a replica does not hide it, and a
replica that missed a push (down, slow, restarted, refused) is given the latest list again, with a
short back-off, until it has it. Only the latest list is ever sent: a burst of changes costs each
replica one or two lists, not one per change. The requests that made a change wait on a condition the
reconciler signals after each look at the replicas, so one reader of their status serves every
waiting request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starling.control.backends.base import Backend
from starling.control.client import WorkerClient
from starling.core.spec import ComponentSpec

log = logging.getLogger("starling.controller")

# How long a change's answer waits for every replica to apply it. A replica applies a list at its next
# batch boundary (a fraction of a second when idle); a busy machine with many changes takes seconds.
LIVE_WAIT_S = 15.0

# How often the replicas' status is read: often while one is behind and a request may be waiting for
# it; less often when one stays behind longer than a request waits (paused, or refusing the list);
# seldom when all are up to date, only to find a replica that (re)started from an older file.
BUSY_POLL_S = 0.2
SLOW_POLL_S = 1.0
IDLE_POLL_S = 5.0
STATUS_TIMEOUT_S = 2.0

# A push that failed (no answer, or refused) is tried again after this, doubled at each failure.
FIRST_RETRY_S = 0.25
MAX_RETRY_S = 5.0


@dataclass(frozen=True)
class Replica:
    """One replica as the reconciler last saw it (versions None where it did not answer)."""

    alive: bool
    applied: int | None
    pending: int | None

    def has(self, version: int) -> bool:
        return self.applied is not None and self.applied >= version

    def awaits(self, version: int) -> bool:
        return self.pending is not None and self.pending >= version


def _version(status: dict[str, Any] | None, key: str) -> int | None:
    found = (status or {}).get(key)
    return found if isinstance(found, int) and not isinstance(found, bool) else None


class StageRollout:
    """The reconciler of one stage; ``wanted`` tells how many replicas the stage should run."""

    def __init__(self, stage: str, backend: Backend, wanted: Callable[[], int]) -> None:
        self.stage = stage
        self.backend = backend
        self.wanted = wanted
        self._changed = threading.Condition()
        self._version = 0  # the pipeline version of the stage's latest list (0: none given yet)
        self._payload: list[dict[str, Any]] = []
        self._published_at = 0.0
        self._seen: list[Replica] | None = None  # the latest look at the replicas (None: none yet)
        self._seen_for = 0  # the version wanted when that look began
        self._looked_at = 0.0  # when that look began (monotonic)
        self._retry: dict[str, tuple[float, float]] = {}  # per replica: not before, last delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rollout-{stage}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def publish(self, version: int, components: list[ComponentSpec]) -> None:
        """The stage's list is now ``components``, as of the desired pipeline's ``version``."""
        with self._changed:
            self._version = version
            self._payload = [c.model_dump() for c in components]
            self._published_at = time.monotonic()
            self._changed.notify_all()

    def replicas(self) -> list[Replica] | None:
        """The replicas as last seen (None before the first look)."""
        with self._changed:
            return None if self._seen is None else list(self._seen)

    def wait_live(self, version: int, timeout_s: float = LIVE_WAIT_S) -> bool:
        """Whether the stage's list as of ``version`` runs in every replica, waiting up to ``timeout_s``.
        False if one did not apply it in time (it will, or reads it when it starts), or if replicas are
        wanted and none runs, as a look begun after this was asked saw them (the last look may have come
        before the backend started them: the reconciler is woken to look again)."""
        asked_at = time.monotonic()
        deadline = asked_at + timeout_s
        with self._changed:
            while True:
                verdict = self._verdict(version, asked_at)
                if verdict is not None:
                    return verdict
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if not self._seen and self._looked_at < asked_at:
                    self._changed.notify_all()  # the reconciler looks again now, not after its pause
                self._changed.wait(remaining)

    def _verdict(self, version: int, asked_at: float) -> bool | None:
        """True: live; False: cannot be yet (no replica runs, some are wanted); None: not known yet (none
        listed by a look begun before ``asked_at`` is not known: they may have been started since)."""
        # The stage's list as of ``version`` is the one of its latest change at or before it: the
        # list of ``version`` itself, or, when the stage did not change since, its current one.
        needed = min(version, self._version)
        if self._seen is None or self._seen_for < needed:
            return None  # not looked at since the change was made (the list may have changed)
        running = [r for r in self._seen if r.alive]
        if running:
            return True if all(r.has(needed) for r in running) else None
        if not self._seen and self._looked_at < asked_at and self.wanted() > 0:
            return None
        return self.wanted() == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                version, payload, published_at = self._version, self._payload, self._published_at
            try:
                settled = self._look(version, payload)
            except Exception:  # the backend failed to list the replicas (an API error): look again
                log.exception("%s: cannot look at the replicas", self.stage)
                settled = False
            if settled:
                delay = IDLE_POLL_S
            else:
                delay = BUSY_POLL_S if time.monotonic() - published_at < LIVE_WAIT_S else SLOW_POLL_S
            with self._changed:
                if self._version == version and not self._stop.is_set():  # else: at once, for the new list
                    self._changed.wait(delay)

    def _look(self, version: int, payload: list[dict[str, Any]]) -> bool:
        """Read each replica's status and give the latest list to those that have it neither applied
        nor pending; True when every replica that runs has it applied."""
        seen: list[Replica] = []
        keys = set()
        began = time.monotonic()
        for worker in self.backend.workers(self.stage):
            status = worker.get("/status", timeout_s=STATUS_TIMEOUT_S) if worker.alive else None
            replica = Replica(
                worker.alive,
                _version(status, "applied_pipeline_version"),
                _version(status, "pending_pipeline_version"),
            )
            seen.append(replica)
            keys.add(self._key(worker))
            # One that does not answer (starting: it reads the file; or stuck) is asked again next time.
            if status is not None and not replica.has(version) and not replica.awaits(version):
                self._push(worker, payload, version)
        self._retry = {key: retry for key, retry in self._retry.items() if key in keys}
        with self._changed:
            self._seen, self._seen_for, self._looked_at = seen, version, began
            self._changed.notify_all()
        # None listed while some are wanted (not started yet) is not settled: looked at again soon.
        return all(r.has(version) for r in seen if r.alive) and (bool(seen) or self.wanted() == 0)

    @staticmethod
    def _key(worker: WorkerClient) -> str:
        return worker.base_url or f"#{worker.replica}"

    def _push(self, worker: WorkerClient, payload: list[dict[str, Any]], version: int) -> None:
        key = self._key(worker)
        not_before, delay = self._retry.get(key, (0.0, 0.0))
        if time.monotonic() < not_before:
            return
        if worker.propose(payload, version) is not None:
            self._retry.pop(key, None)
            return
        delay = min(MAX_RETRY_S, max(FIRST_RETRY_S, delay * 2))
        self._retry[key] = (time.monotonic() + delay, delay)
        log.warning(
            "%s#%d did not take version %d; trying again in %.2f s",
            self.stage,
            worker.replica,
            version,
            delay,
        )
