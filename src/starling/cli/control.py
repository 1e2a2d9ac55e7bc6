"""``starling controller``, ``starling token`` and ``starling ctl`` (the controller's client)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from pydantic import BaseModel, ConfigDict
from rich.table import Table

from starling.cli.terminal import console, report_error
from starling.control.backends.base import Backend
from starling.core.spec import PipelineSpec

ctl_app = typer.Typer(no_args_is_help=True, help="Ask the controller: see and change the running pipeline.")
token_app = typer.Typer(no_args_is_help=True, help="Access tokens for the control API.")

DEFAULT_CONTROLLER = "http://127.0.0.1:8765"


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

    from starling.cli.main import load_pipeline
    from starling.control.controller import Controller, controller_app
    from starling.control.service import BackgroundServer
    from starling.control.state import ControllerState, DesiredPipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = ControllerState(output / "starling.db")
    desired = state.load()
    restored = desired is not None
    if desired is None:
        spec = load_pipeline(pipeline)
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


def _call(
    method: str, path: str, body: Any = None, controller: str | None = None, token: str | None = None
) -> Any:
    url = (controller or os.environ.get("STARLING_CONTROLLER") or DEFAULT_CONTROLLER).rstrip("/") + path
    secret = token or os.environ.get("STARLING_TOKEN")
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        report_error(f"cannot reach the controller at {url}: {exc}")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        report_error(str(response.json().get("detail")), label=f"refused ({response.status_code})")
        raise typer.Exit(1)
    return response.json()


Controller = Annotated[str | None, typer.Option(help="controller URL (or $STARLING_CONTROLLER)")]
Token = Annotated[str | None, typer.Option(help="access token (or $STARLING_TOKEN)")]


@ctl_app.command("show")
def show(controller: Controller = None, token: Token = None) -> None:
    """The pipeline: stages, components in order, replicas, topics, throughput and lag."""
    view = _call("GET", "/pipeline", controller=controller, token=token)
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
    body = {"use": use, "name": name, "config": _json(config), "position": position}
    console.print(_call("POST", f"/stages/{stage}/components", body, controller, token))


@ctl_app.command("remove")
def remove(stage: str, name: str, controller: Controller = None, token: Token = None) -> None:
    """Remove a component from a stage."""
    console.print(_call("DELETE", f"/stages/{stage}/components/{name}", None, controller, token))


@ctl_app.command("config")
def configure(stage: str, name: str, config: str, controller: Controller = None, token: Token = None) -> None:
    """Change some config fields of a component (JSON object)."""
    console.print(
        _call("PATCH", f"/stages/{stage}/components/{name}", {"config": _json(config)}, controller, token)
    )


@ctl_app.command("order")
def order(stage: str, names: list[str], controller: Controller = None, token: Token = None) -> None:
    """Reorder the components of a stage."""
    console.print(_call("PUT", f"/stages/{stage}/order", {"components": names}, controller, token))


@ctl_app.command("replicas")
def replicas(stage: str, count: int, controller: Controller = None, token: Token = None) -> None:
    """Set how many workers run a stage."""
    console.print(_call("PUT", f"/stages/{stage}/replicas", {"replicas": count}, controller, token))


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
        console.print(_call("DELETE", f"/stages/{stage}/autoscaling", None, controller, token))
        return
    policy = {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "target_lag_per_replica": target_lag,
        "scale_up_cooldown_s": up_cooldown,
        "scale_down_cooldown_s": down_cooldown,
    }
    console.print(_call("PUT", f"/stages/{stage}/autoscaling", policy, controller, token))


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        report_error(f"not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        report_error("the config must be a JSON object")
        raise typer.Exit(2)
    return value


__all__ = ["ctl_app", "run_controller", "token_app"]
