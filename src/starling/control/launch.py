"""Starting the controller as a service: its state, its backend, the autoscaler and its API.

``starling controller`` calls :func:`run_controller`; it runs until SIGTERM or SIGINT, and whatever
happens, local workers stop with it (a Kubernetes backend keeps its Deployments).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from starling.assembly import assemble
from starling.control.api.app import controller_app
from starling.control.backends.base import Backend
from starling.control.backends.kubernetes import KubernetesBackend
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.quotas import Quotas
from starling.control.server import BackgroundServer
from starling.control.state import ControllerState, DesiredPipeline
from starling.core.secrets import write_private
from starling.core.service import start_service_process
from starling.core.spec import PipelineSpec, file_version
from starling.deploy.kubernetes import DeploymentSettings

log = logging.getLogger("starling.controller")


class BackendChoice(BaseModel):
    """Which backend runs the workers; checked before anything starts."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "kubernetes"] = "local"
    namespace: str = "starling"
    image: str | None = None

    def build(self, spec: PipelineSpec, output: Path) -> Backend:
        if self.kind == "local":
            return LocalBackend(spec, output)
        settings = DeploymentSettings(namespace=self.namespace)
        if self.image:
            settings = settings.model_copy(update={"image": self.image})
        return KubernetesBackend.from_environment(settings)


def run_controller(
    pipeline: Path | None,
    output: Path,
    port: int,
    port_file: Path | None,
    host: str = "127.0.0.1",
    backend_choice: BackendChoice | None = None,
    quotas: Quotas | None = None,
) -> None:
    """Start the controller: desired pipeline from the store (or the file, the first time), workers
    through the backend, and the API on ``host``; ``quotas`` bound what each user may hold."""
    start_service_process()  # its log lines; its threads dumped on SIGUSR1
    state = ControllerState(output / "starling.db")
    desired = state.load()
    restored = desired is not None
    # A pipeline file the controller wrote (the Kubernetes pipeline Secret) carries its version: the
    # versions go on from it, so no running worker ever holds a version newer than the desired one
    # (it would be taken to run changes it never received).
    written = (file_version(pipeline) if pipeline is not None else None) or 0
    if desired is None:
        spec = assemble(pipeline)
        desired = DesiredPipeline(spec=spec, version=max(1, written))
    elif desired.version < written:
        desired = desired.model_copy(update={"version": written})
    # Built before anything is written, so a backend that cannot work leaves no state behind.
    backend = (backend_choice or BackendChoice()).build(desired.spec, output)
    if restored:
        log.info(f"pipeline version {desired.version} restored from {output / 'starling.db'}")
    else:
        state.save(desired)
        log.info(f"new pipeline, version {desired.version}")
    if not state.tokens():
        token = state.create_token("operator", "operator")
        token_path = output / "run" / "operator.token"
        write_private(token_path, token)
        log.info(f"operator token written to {token_path} (shown once)")
    controller = Controller(state, backend, desired, store_location=output / "starling.db", quotas=quotas)
    server = BackgroundServer(controller_app(controller), host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        # The API first: workers fetch the stored bodies their pipeline refers to from it as they start.
        bound = server.start()
        if isinstance(backend, LocalBackend):  # on this machine: the address it listens on, or loopback
            reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            backend.tell_workers(f"http://{f'[{reachable}]' if ':' in reachable else reachable}:{bound}")
        backend.start(desired.spec, desired.replicas, desired.version)
        controller.follow_load()
        if port_file is not None:
            port_file.write_text(str(bound))
        log.info(f"controller API on http://{host}:{bound}")
        stop.wait()
    finally:
        # Whatever happens, local workers stop with their controller (Kubernetes keeps its Deployments).
        controller.close()
        server.stop()
        backend.stop()
        state.close()
