"""What the controller asks of a backend: run each stage's workers at the desired count.

Two backends: ``local`` (worker processes on this machine, ``local_backend``) and ``kubernetes`` (one
Deployment per stage, ``kubernetes_backend``). Either way the controller then talks to each worker's
control API (``WorkerClient``) to push configuration and read status and lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starling.control.client import WorkerClient
from starling.core.spec import PipelineSpec
from starling.deploy.sessions import ContainerRun
from starling.vo.execbroker.ledger import Capacity


class Backend(Protocol):
    # The most bytes the pipeline (as ``write_spec`` writes it) may take where workers read it; None: no
    # limit. The controller refuses a change past it, before saving it: never a desired pipeline the
    # workers cannot be given.
    max_pipeline_bytes: int | None
    # Whether it can run a user's container image (``start_container``): it needs a container engine.
    runs_containers: bool

    @property
    def token(self) -> str:
        """The workers' control secret: the controller takes it as a worker's token, which may fetch the
        stored bodies the pipeline refers to (``GET /bodies/{digest}``) and nothing else."""

    def start(self, spec: PipelineSpec, replicas: dict[str, int], version: int | None = None) -> None:
        """Make the pipeline run with these replicas (create what is missing, adopt what exists);
        ``version``: as for ``write_spec``."""

    def write_spec(self, spec: PipelineSpec, version: int | None = None) -> None:
        """Keep the pipeline where new and restarted workers read it, with the desired pipeline's
        ``version`` (a worker reports it as the version it runs)."""

    def workers(self, stage: str) -> Sequence[WorkerClient]:
        """The stage's workers now running (or starting), in replica order."""

    def scale(self, replicas: dict[str, int]) -> None:
        """Set the count of some stages; a worker removed drains first (it commits what it holds). A stage
        new to the backend (inserted into the pipeline last written) is created."""

    def start_stages(self, replicas: dict[str, int]) -> None:
        """Start stages a reshape drained (or made) on the pipeline last written: each is made anew from
        it, as its role in the chain may have changed (the stage that holds the store, say)."""

    def start_held(self, spec: PipelineSpec, version: int, replicas: dict[str, int]) -> bool:
        """Start stages a reshape is about to add on ``spec`` (of ``version``, not committed yet), held:
        they join their groups and take nothing until the controller wires them. False when this
        backend cannot (the reshape then drains and restarts stages instead)."""

    def remove_stage(self, stage: str) -> None:
        """A stage left the pipeline: what ran it is removed (its workers have drained already)."""

    def restarts(self) -> dict[str, int]:
        """Restarts per worker, for the controller's status."""

    def stop(self) -> None:
        """The controller is stopping."""

    def set_identity(self, stage: str, identity: dict[str, str] | None) -> None:
        """The Kafka identity the workers of ``stage`` (one with ``own_principal``) connect as: librdkafka
        settings with a password, kept where only they read it; None: it is deleted."""

    def start_container(self, run: ContainerRun) -> None:
        """Run a user's container image as a stage of its own (its identity set first)."""

    def remove_container(self, stage: str) -> None:
        """Stop and remove a container stage (nothing if it is gone)."""

    def has_container(self, stage: str) -> bool:
        """Whether a container stage of that name is there."""

    def quota_capacity(self) -> Capacity | None:
        """What users' sessions may be offered when a quota sets it (a Kubernetes namespace's); None:
        the machine's own capacity."""
