"""The controller's ``local`` backend: worker processes on this machine, kept to the desired count.

A supervisor thread restarts a worker that dies, with an exponential back-off per slot (1 s, 2 s,
4 s ... at most 30 s; back to 1 s after a minute of good health). Scaling down drains the replica
first (``POST /drain``: it commits what it holds and leaves its group), so nothing is lost or doubled.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from starling.control.backends.processes import LocalChain, WorkerProcess
from starling.core.secrets import write_private
from starling.core.spec import PipelineSpec, versioned_json
from starling.core.stages import stage_names
from starling.deploy.sessions import ContainerRun
from starling.errors import ConfigError
from starling.vo.execbroker.ledger import Capacity

log = logging.getLogger("starling.controller")

_MAX_BACKOFF_S = 30.0
_HEALTHY_RESET_S = 60.0


@dataclass
class _Slot:
    failures: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0


class LocalBackend:
    max_pipeline_bytes: int | None = None  # a file: no limit of its own
    runs_containers = False  # no container engine here

    def __init__(self, spec: PipelineSpec, output_dir: Path) -> None:
        self.chain = LocalChain(spec, output_dir, replicas=dict.fromkeys(stage_names(spec), 0))
        self.desired: dict[str, int] = dict.fromkeys(stage_names(spec), 0)
        self.slots: dict[tuple[str, int], _Slot] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    @property
    def token(self) -> str:
        return self.chain.token

    def tell_workers(self, controller_url: str) -> None:
        """Where the workers started from now on reach the controller (for the stored bodies)."""
        self.chain.environment["STARLING_CONTROLLER"] = controller_url

    def start(self, spec: PipelineSpec, replicas: dict[str, int], version: int | None = None) -> None:
        self.write_spec(spec, version)
        self.chain.start_topics()
        self.scale(replicas)
        self.chain.wait_ready(120)
        self._thread.start()

    def write_spec(self, spec: PipelineSpec, version: int | None = None) -> None:
        """New and restarted workers read this file: it always holds the current pipeline."""
        self.chain.spec = spec
        self.chain.version = version
        self.chain.write_spec()
        for held in self.chain.run_dir.glob("pipeline-*.json"):  # a reshape's, committed or given up
            held.unlink(missing_ok=True)

    def workers(self, stage: str) -> list[WorkerProcess]:
        with self._lock:
            return sorted((w for w in self.chain.workers if w.stage == stage), key=lambda w: w.replica)

    def scale(self, replicas: dict[str, int]) -> None:
        with self._lock:
            for stage, count in replicas.items():
                self.desired[stage] = count
                for replica in range(count):
                    if (stage, replica) not in self.slots:
                        self.slots[stage, replica] = _Slot()
                        self.chain.start_worker(stage, replica)
                for worker in [w for w in self.workers(stage) if w.replica >= count]:
                    self.slots.pop((stage, worker.replica), None)
                    self._drain_and_forget(worker)

    def start_stages(self, replicas: dict[str, int]) -> None:
        self.scale(replicas)  # a worker reads the pipeline file as it starts

    def start_held(self, spec: PipelineSpec, version: int, replicas: dict[str, int]) -> bool:
        # Their own file: the pipeline file keeps the committed pipeline until the reshape commits.
        path = self.chain.run_dir / f"pipeline-{version}.json"
        write_private(path, versioned_json(spec, version))
        with self._lock:
            for stage, count in replicas.items():
                self.desired[stage] = count
                for replica in range(count):
                    self.slots[stage, replica] = _Slot()
                    self.chain.start_worker(stage, replica, path, held=True)
        return True

    def remove_stage(self, stage: str) -> None:
        with self._lock:
            self.scale({stage: 0})
            self.desired.pop(stage, None)

    def set_identity(self, stage: str, identity: dict[str, str] | None) -> None:
        path = self.chain.identity_path(stage)
        if identity is None:
            path.unlink(missing_ok=True)
        else:
            write_private(path, json.dumps(identity))

    def start_container(self, run: ContainerRun) -> None:
        raise ConfigError("the local backend has no container engine: it runs Starling components only")

    def remove_container(self, stage: str) -> None:
        """Nothing: no container runs here."""

    def has_container(self, stage: str) -> bool:
        return False

    def quota_capacity(self) -> Capacity | None:
        """None: this machine's own cores and memory are what sessions are offered."""
        return None

    def _drain_and_forget(self, worker: WorkerProcess) -> None:
        if worker.post("/drain") is None and worker.process.poll() is None:
            # Not answering yet (still starting, its API not up): SIGTERM stops it as gracefully (it
            # finishes a batch it holds); left alone, it would come up and run until the kill below.
            worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(timeout=60)
        except Exception:  # a worker that does not drain in time is stopped; its batch will be replayed
            worker.process.kill()
            worker.process.wait()
        self.chain.workers = [w for w in self.chain.workers if w is not worker]

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                now = time.monotonic()
                for (stage, replica), slot in list(self.slots.items()):
                    worker = next(
                        (w for w in self.chain.workers if (w.stage, w.replica) == (stage, replica)), None
                    )
                    if worker is not None and worker.alive:
                        if slot.failures and now - slot.started_at > _HEALTHY_RESET_S:
                            slot.failures = 0
                        continue
                    if slot.next_start == 0.0:
                        slot.failures += 1
                        delay = min(_MAX_BACKOFF_S, 2.0 ** (slot.failures - 1))
                        slot.next_start = now + delay
                        log.warning("%s#%d died; restarting in %.0f s", stage, replica, delay)
                    elif now >= slot.next_start:
                        slot.next_start = 0.0
                        slot.started_at = now
                        slot.restarts += 1
                        self.chain.start_worker(stage, replica)

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {f"{stage}#{replica}": slot.restarts for (stage, replica), slot in self.slots.items()}

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.chain.stop()
