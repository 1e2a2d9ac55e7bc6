"""The whole chain over Kafka on this machine: one worker process per stage replica.

Each worker is ``python -m starling serve <stage>``, serving its control API on 127.0.0.1 (the port
it chose is written to a file), logging to ``<output>/logs``. The pipeline description the workers
read is written once as JSON, so every replica runs exactly the same one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starling.control.auth import TOKEN_ENV, new_secret
from starling.control.client import WorkerClient
from starling.control.kafka_users import ADMIN_PASSWORD_ENV
from starling.core.secrets import write_private
from starling.core.spec import PipelineSpec, versioned_json
from starling.core.stages import all_topics, chain_names, stage_names
from starling.errors import StarlingError
from starling.transport.kafka.clients import IDENTITY_ENV, ensure_topics


@dataclass
class WorkerProcess(WorkerClient):
    stage: str
    replica: int
    process: subprocess.Popen[bytes]
    port_file: Path
    log_path: Path
    token: str

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text())
        except (OSError, ValueError):
            return None

    @property
    def base_url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def free_cpus(spec: PipelineSpec, machine: list[int], cores: int) -> list[int]:
    """``cores`` CPUs for a stage being added: the machine's last ones (the chain's stages run on the first)
    that no stage of ``spec`` holds. When too few are free (the broker offers no more than there are), the
    last ones are shared."""
    held = {cpu for stage in spec.stages if stage.resources for cpu in stage.resources.cpus or ()}
    free = [cpu for cpu in reversed(machine) if cpu not in held]
    chosen = free[:cores] if len(free) >= cores else list(reversed(machine))[:cores]
    return sorted(chosen)


class LocalChain:
    """Starts, watches and stops the worker processes of a pipeline."""

    def __init__(
        self,
        spec: PipelineSpec,
        output_dir: Path,
        replicas: dict[str, int] | None = None,
        stages: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.output_dir = output_dir.resolve()
        self.stages = stage_names(spec) if stages is None else stages
        self.replicas = {stage: (replicas or {}).get(stage, 1) for stage in self.stages}
        self.run_dir = self.output_dir / "run"
        self.spec_path = self.run_dir / "pipeline.json"
        self.version: int | None = None  # the controller's version of ``spec``, written with it
        self.workers: list[WorkerProcess] = []
        # One operator secret for the control APIs of this chain's workers, handed to them at start.
        self.token = new_secret()
        # More of the workers' environment (the controller's URL, when a controller runs them).
        self.environment: dict[str, str] = {}

    def write_spec(self) -> None:
        """The pipeline description every worker reads when it starts (rewritten on every change)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "logs").mkdir(parents=True, exist_ok=True)
        # Private (it holds the users' webhook secrets), and atomic: a starting worker never reads half.
        write_private(self.spec_path, versioned_json(self.spec, self.version))

    def start_topics(self) -> None:
        ensure_topics(self.spec.kafka, all_topics(self.spec))

    def start(self, ready_timeout_s: float = 60.0) -> None:
        self.write_spec()
        self.start_topics()
        for stage in self.stages:
            for replica in range(self.replicas[stage]):
                self.start_worker(stage, replica)
        self.wait_ready(ready_timeout_s)

    def start_worker(
        self, stage: str, replica: int, spec_path: Path | None = None, held: bool = False
    ) -> WorkerProcess:
        """A replica of ``stage`` started on the pipeline file (or ``spec_path``); ``held``: it takes
        nothing until the controller wires it (``starling serve --held``)."""
        port_file = self.run_dir / f"{stage}-{replica}.port"
        port_file.unlink(missing_ok=True)
        log_path = self.output_dir / "logs" / f"{stage}-{replica}.log"
        command = [
            *self._limits(stage),
            sys.executable,
            "-m",
            "starling",
            "serve",
            stage,
            "--pipeline",
            str(spec_path or self.spec_path),
            "--output",
            str(self.output_dir),
            "--port-file",
            str(port_file),
            *(["--held"] if held else []),
        ]
        environment = {**os.environ, **self.environment, TOKEN_ENV: self.token}
        environment.pop(ADMIN_PASSWORD_ENV, None)  # Kafka's super user is the controller's alone
        if self._own_principal(stage):  # fails closed: no identity file, no Kafka for it
            environment[IDENTITY_ENV] = str(self.identity_path(stage))
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        worker = WorkerProcess(stage, replica, process, port_file, log_path, self.token)
        self.workers = [w for w in self.workers if (w.stage, w.replica) != (stage, replica)] + [worker]
        return worker

    def identity_path(self, stage: str) -> Path:
        return self.run_dir / "identities" / f"{stage}.json"

    def _own_principal(self, stage: str) -> bool:
        try:
            return self.spec.stage(stage).own_principal
        except KeyError:  # a stage a reshape is about to add (its own file): never a session's, which are
            return False  # added to the pipeline first; a worker of one refuses to run without its identity

    def _limits(self, stage: str) -> list[str]:
        """What a stage with resources runs under: pinned to its cores (the machine's last ones, away from
        the chain's first), its data memory capped (util-linux's ``taskset`` and ``prlimit``, which exec the
        worker: it keeps their process)."""
        try:
            resources = self.spec.stage(stage).resources
        except KeyError:  # a stage a reshape is about to add: its own file says
            return []
        if resources is None:
            return []
        machine = sorted(os.sched_getaffinity(0))
        cpus = resources.cpus or free_cpus(self.spec, machine, resources.cores)
        data = int(resources.memory_gib * 1024**3)
        return ["prlimit", f"--data={data}", "--", "taskset", "-c", ",".join(map(str, cpus))]

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for worker in list(self.workers):
            while True:
                if not worker.alive:
                    raise StarlingError(f"{worker.stage} worker exited; see {worker.log_path}")
                if worker.get("/ready") is not None:
                    break
                if time.monotonic() > deadline:
                    raise StarlingError(
                        f"{worker.stage} worker not ready in {timeout_s} s; see {worker.log_path}"
                    )
                time.sleep(0.1)

    def worker(self, stage: str, replica: int = 0) -> WorkerProcess:
        return next(w for w in self.workers if (w.stage, w.replica) == (stage, replica))

    def statuses(self, stage: str) -> list[dict[str, Any]]:
        return [s for w in self.workers if w.stage == stage and (s := w.get("/status")) is not None]

    def settled_count(self) -> int:
        """Messages that have gone all the way: stored, or refused as dead letters on the way."""
        done = sum(int(s["messages_in"]) for s in self.statuses(chain_names(self.spec)[-1]))
        for stage in chain_names(self.spec):
            done += sum(int(s["components"]["decode"]["failed"]) for s in self.statuses(stage))
        return done

    def wait_for(self, count: int, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.settled_count() < count:
            if time.monotonic() > deadline:
                raise StarlingError(
                    f"only {self.settled_count()} of {count} messages through in {timeout_s} s"
                )
            time.sleep(0.2)

    def kill(self, stage: str, replica: int = 0, sig: int = signal.SIGKILL) -> None:
        worker = self.worker(stage, replica)
        worker.process.send_signal(sig)
        worker.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        for worker in self.workers:
            if worker.alive:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
