"""``starling controller``, ``starling token`` and ``starling ctl`` (the controller's client)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, ConfigDict
from rich.table import Table

from starling.cli.options import Controller, Token, ask, json_object
from starling.cli.terminal import console, report_error
from starling.control.backends.base import Backend
from starling.core.spec import PipelineSpec
from starling.errors import StarlingError

ctl_app = typer.Typer(no_args_is_help=True, help="Ask the controller: see and change the running pipeline.")
token_app = typer.Typer(no_args_is_help=True, help="Access tokens for the control API.")


class BackendChoice(BaseModel):
    """Which backend runs the workers; checked before anything starts."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "kubernetes"] = "local"
    namespace: str = "starling"
    image: str | None = None

    def build(self, spec: PipelineSpec, output: Path) -> Backend:
        if self.kind == "local":
            from starling.control.backends.local import LocalBackend

            return LocalBackend(spec, output)
        from starling.control.backends.kubernetes import KubernetesBackend
        from starling.deploy.kubernetes import DeploymentSettings

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
) -> None:
    """Start the controller: desired pipeline from the store (or the file, the first time), workers
    through the backend, and the API on ``host``."""
    import logging

    from starling.assembly import assemble
    from starling.control.api.app import controller_app
    from starling.control.controller import Controller
    from starling.control.server import BackgroundServer
    from starling.control.state import ControllerState, DesiredPipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = ControllerState(output / "starling.db")
    desired = state.load()
    restored = desired is not None
    if desired is None:
        spec = assemble(pipeline)
        desired = DesiredPipeline(spec=spec)
    # Built before anything is written, so a backend that cannot work leaves no state behind.
    backend = (backend_choice or BackendChoice()).build(desired.spec, output)
    if restored:
        console.print(f"pipeline version {desired.version} restored from {output / 'starling.db'}")
    else:
        state.save(desired)
        console.print(f"new pipeline, version {desired.version}")
    if not state.tokens():
        token = state.create_token("operator", "operator")
        token_path = output / "run" / "operator.token"
        token_path.parent.mkdir(parents=True, exist_ok=True)
        token_path.write_text(token)
        token_path.chmod(0o600)
        console.print(f"operator token written to {token_path} (shown once)")
    controller = Controller(state, backend, desired, store_location=output / "starling.db")
    server = BackgroundServer(controller_app(controller), host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        backend.start(desired.spec, desired.replicas)
        controller.autoscaler.start()
        bound = server.start()
        if port_file is not None:
            port_file.write_text(str(bound))
        console.print(f"controller API on http://{host}:{bound}")
        stop.wait()
    finally:
        # Whatever happens, local workers stop with their controller (Kubernetes keeps its Deployments).
        controller.autoscaler.stop()
        controller.close()
        server.stop()
        backend.stop()
        state.close()


def controller(
    pipeline: Annotated[Path | None, typer.Option(help="the pipeline to start with (first run only)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="store, logs and run files")] = Path(
        "starling-output"
    ),
    port: Annotated[int, typer.Option(help="API port (0: any free port)")] = 8765,
    port_file: Annotated[Path | None, typer.Option(help="write the API's port here")] = None,
    host: Annotated[str, typer.Option(help="address the API listens on (0.0.0.0 in a pod)")] = "127.0.0.1",
    backend: Annotated[
        str, typer.Option(help="local (worker processes here) or kubernetes (a Deployment per stage)")
    ] = "local",
    namespace: Annotated[str, typer.Option(help="kubernetes: the namespace of the workers")] = "starling",
    image: Annotated[str | None, typer.Option(help="kubernetes: the image the workers run")] = None,
) -> None:
    """Run the controller: keeps the desired pipeline in the store, runs the workers through its backend,
    and serves the API that changes the pipeline while it runs (see `starling ctl`)."""
    if backend not in ("local", "kubernetes"):
        report_error(f"--backend is local or kubernetes, not {backend!r}")
        raise typer.Exit(2)
    try:
        choice = BackendChoice(kind=backend, namespace=namespace, image=image)
        run_controller(pipeline, output, port, port_file, host, choice)
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None


@token_app.command("create")
def create_token(
    role: Annotated[str, typer.Option(help="operator or user")] = "user",
    user: Annotated[str, typer.Option(help="who the token is for")] = "user",
    output: Annotated[Path, typer.Option("--output", "-o", help="where the store is")] = Path(
        "starling-output"
    ),
) -> None:
    """Create a token (printed once; only its hash is kept)."""
    from starling.control.state import ControllerState

    if role not in ("operator", "user"):
        report_error("--role must be operator or user")
        raise typer.Exit(2)
    state = ControllerState(output / "starling.db")
    console.print(state.create_token(role, user))  # type: ignore[arg-type]
    state.close()


@ctl_app.command("show")
def show(controller: Controller = None, token: Token = None) -> None:
    """The pipeline: stages, components in order, replicas, topics, throughput and lag."""
    view = ask(controller, token, lambda c: c.pipeline())
    table = Table(title=f"pipeline version {view['version']}", title_justify="left")
    for column in ("stage", "components", "replicas", "in", "alerts/s", "lag"):
        table.add_column(column)
    for stage in view["stages"]:
        names = ", ".join(f"{c['name'] or c['use']} ({c['use']})" for c in stage["components"])
        table.add_row(
            stage["name"],
            names,
            str(stage["replicas"]),
            str(stage["messages_in"]),
            str(stage["alerts_per_s"]),
            str(stage["lag"]),
        )
    console.print(table)


@ctl_app.command("add")
def add(
    stage: str,
    use: str,
    name: Annotated[str | None, typer.Option()] = None,
    config: Annotated[str, typer.Option(help="JSON object")] = "{}",
    position: Annotated[int | None, typer.Option()] = None,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Add a component to a stage of the running pipeline."""
    body = {"use": use, "name": name, "config": json_object(config, "the config"), "position": position}
    console.print(ask(controller, token, lambda c: c.add_component(stage, body)))


@ctl_app.command("remove")
def remove(stage: str, name: str, controller: Controller = None, token: Token = None) -> None:
    """Remove a component from a stage."""
    console.print(ask(controller, token, lambda c: c.remove_component(stage, name)))


@ctl_app.command("config")
def configure(stage: str, name: str, config: str, controller: Controller = None, token: Token = None) -> None:
    """Change some config fields of a component (JSON object)."""
    changes = json_object(config, "the config")
    console.print(ask(controller, token, lambda c: c.patch_component(stage, name, changes)))


@ctl_app.command("order")
def order(stage: str, names: list[str], controller: Controller = None, token: Token = None) -> None:
    """Reorder the components of a stage."""
    console.print(ask(controller, token, lambda c: c.reorder(stage, names)))


@ctl_app.command("replicas")
def replicas(stage: str, count: int, controller: Controller = None, token: Token = None) -> None:
    """Set how many workers run a stage."""
    console.print(ask(controller, token, lambda c: c.set_replicas(stage, count)))


@ctl_app.command("autoscale")
def autoscale(
    stage: str,
    min_replicas: Annotated[int, typer.Option("--min")] = 1,
    max_replicas: Annotated[int, typer.Option("--max")] = 4,
    target_lag: Annotated[int, typer.Option(help="messages of lag one replica should carry")] = 2000,
    up_cooldown: Annotated[float, typer.Option(help="seconds between two steps up")] = 5.0,
    down_cooldown: Annotated[float, typer.Option(help="seconds without a change before a step down")] = 30.0,
    off: Annotated[bool, typer.Option("--off", help="turn autoscaling off for the stage")] = False,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Let a stage's replicas follow its consumer lag (or --off)."""
    if off:
        console.print(ask(controller, token, lambda c: c.set_autoscaling(stage, None)))
        return
    policy = {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "target_lag_per_replica": target_lag,
        "scale_up_cooldown_s": up_cooldown,
        "scale_down_cooldown_s": down_cooldown,
    }
    console.print(ask(controller, token, lambda c: c.set_autoscaling(stage, policy)))


__all__ = ["controller", "ctl_app", "run_controller", "token_app"]
