"""A stage with resources (a user's session: what it was offered) runs within them: on the local backend
pinned to its cores with its data memory capped, seen in the worker's own /proc; on Kubernetes with
requests and limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from starling.control.backends.processes import LocalChain, free_cpus
from starling.core.spec import ComponentSpec, StageResources, StageSpec
from starling.deploy.kubernetes import DeploymentSettings, worker_deployment
from starling.transport.kafka.clients import IDENTITY_ENV
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec


def _with_session_stage(gib: float = 1.5):
    base = chain_spec("127.0.0.1:1", "limits", 10)  # the worker only starts: Kafka is never reached here
    session = StageSpec(
        name="s-0123abcd",
        beside="filter",
        annotators=[ComponentSpec(use="lc-features")],
        resources=StageResources(cores=1, memory_gib=gib),
    )
    return base.model_copy(update={"stages": [*base.stages, session]})


def _execed(pid: int) -> bool:
    """Whether the process runs the worker itself now (not yet the fork of this one, nor a wrapper)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3] == [
        sys.executable.encode(),
        b"-m",
        b"starling",
    ]


def test_a_local_worker_of_a_stage_with_resources_runs_within_them(tmp_path: Path) -> None:
    spec = _with_session_stage()
    chain = LocalChain(spec, tmp_path)
    chain.write_spec()
    worker = chain.start_worker("s-0123abcd", 0)
    try:
        status = Path(f"/proc/{worker.process.pid}/status")
        # prlimit and taskset exec the worker: the same process, Python once they have.
        wait_until(lambda: _execed(worker.process.pid), 30, "the worker")
        allowed = next(
            line for line in status.read_text().splitlines() if line.startswith("Cpus_allowed_list")
        )
        assert allowed.split()[-1] == str(sorted(os.sched_getaffinity(0))[-1])
        limits = Path(f"/proc/{worker.process.pid}/limits").read_text()
        data = next(line for line in limits.splitlines() if line.startswith("Max data size"))
        assert data.split()[3:5] == [str(int(1.5 * 1024**3))] * 2
        plain = chain.start_worker("filter", 0)  # a stage without resources runs as it always did
        wait_until(lambda: _execed(plain.process.pid), 30, "the worker")
        assert "unlimited" in next(
            line
            for line in Path(f"/proc/{plain.process.pid}/limits").read_text().splitlines()
            if line.startswith("Max data size")
        )
    finally:
        for running in chain.workers:
            running.process.send_signal(signal.SIGKILL)
            running.process.wait()


def test_a_kubernetes_worker_of_a_stage_with_resources_requests_and_is_limited_to_them() -> None:
    spec = _with_session_stage(gib=2)
    deployment = worker_deployment("s-0123abcd", DeploymentSettings(), 1, spec)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2048Mi"},
        "limits": {"cpu": "1", "memory": "2048Mi"},
    }
    plain = worker_deployment("filter", DeploymentSettings(), 1, spec)["spec"]["template"]["spec"]
    assert "cpu" not in plain["containers"][0]["resources"]["limits"]  # the chain's own stages as before


def test_a_stage_added_with_resources_gets_cores_no_other_stage_holds() -> None:
    base = chain_spec("127.0.0.1:1", "limits", 10)

    def holding(name: str, cpus: list[int]) -> StageSpec:
        resources = StageResources(cores=len(cpus), memory_gib=1, cpus=cpus)
        return StageSpec(name=name, beside="filter", resources=resources)

    spec = base.model_copy(update={"stages": [*base.stages, holding("s-b", [7])]})
    # A was removed from [5, 6]; C, added now, takes the last free ones: never B's.
    assert free_cpus(spec, list(range(8)), 2) == [5, 6]
    spec = spec.model_copy(update={"stages": [*spec.stages, holding("s-c", [5, 6])]})
    assert free_cpus(spec, list(range(8)), 1) == [4]
    # More than are free (the broker never offers that): the last ones, shared.
    assert free_cpus(spec, list(range(4)), 2) == [2, 3]


def test_a_worker_of_a_session_stage_refuses_to_run_without_its_own_identity(tmp_path: Path) -> None:
    """It never falls back to the pipeline's Kafka access: no identity named, or one it cannot read."""
    spec = _with_session_stage()
    stages = [
        s.model_copy(update={"own_principal": True}) if s.name == "s-0123abcd" else s for s in spec.stages
    ]
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_copy(update={"stages": stages}).model_dump_json())
    command = [sys.executable, "-m", "starling", "serve", "s-0123abcd", "--pipeline", str(pipeline)]
    environment = {k: v for k, v in os.environ.items() if k != IDENTITY_ENV}
    for extra, said in (({}, "is not set"), ({IDENTITY_ENV: str(tmp_path / "none.json")}, "cannot read")):
        ran = subprocess.run(
            [*command, "--output", str(tmp_path)],
            env={**environment, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 2
        assert said in ran.stderr + ran.stdout
