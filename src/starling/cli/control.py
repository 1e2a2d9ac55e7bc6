"""``starling controller``, ``starling token`` and ``starling ctl`` (the controller's client)."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from starling.cli.options import Controller, Token, ask, json_object
from starling.cli.terminal import console, report_error
from starling.control.quotas import Quotas
from starling.errors import ConfigError, StarlingError

ctl_app = typer.Typer(no_args_is_help=True, help="Ask the controller: see and change the running pipeline.")
token_app = typer.Typer(no_args_is_help=True, help="Access tokens for the control API.")


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
    quotas: Annotated[
        Path | None, typer.Option(help="a TOML file of per-user quotas (filters_per_user = 50, ...)")
    ] = None,
) -> None:
    """Run the controller: keeps the desired pipeline in the store, runs the workers through its backend,
    and serves the API that changes the pipeline while it runs (see `starling ctl`)."""
    if backend not in ("local", "kubernetes"):
        report_error(f"--backend is local or kubernetes, not {backend!r}")
        raise typer.Exit(2)
    try:
        # Imported here: the controller's modules are heavy, and every worker starts through this CLI.
        from starling.control.launch import BackendChoice, run_controller

        choice = BackendChoice(kind=backend, namespace=namespace, image=image)
        run_controller(pipeline, output, port, port_file, host, choice, read_quotas(quotas))
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None


Output = Annotated[Path, typer.Option("--output", "-o", help="where the controller keeps its state")]


def read_quotas(path: Path | None) -> Quotas | None:
    """Per-user quotas from a TOML file (a ConfigError naming the field if one is wrong)."""
    if path is None:
        return None
    try:
        return Quotas.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the quotas {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"quotas {path}: {problems}") from exc


@token_app.command("create")
def create_token(
    role: Annotated[
        str, typer.Option(help="operator, user, or metrics (reads /metrics and /status only)")
    ] = "user",
    user: Annotated[str, typer.Option(help="who the token is for (a user's name is its owner id)")] = "user",
    expires_days: Annotated[
        float | None, typer.Option(help="days until it stops working (none: never)")
    ] = None,
    output: Output = Path("starling-output"),
) -> None:
    """Create a token (printed once; only its hash is kept)."""
    from starling.control.state import ControllerState
    from starling.control.tokens import ROLES

    if role not in ROLES:
        report_error(f"--role must be one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    state = ControllerState(output / "starling.db")
    try:
        expires = expires_days * 86_400 if expires_days is not None else None
        token, _ = state.tokens_store.create(role, user, expires)
        console.print(token)
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    finally:
        state.close()


@token_app.command("list")
def list_tokens(output: Output = Path("starling-output")) -> None:
    """Every token: id, role, user, created, expires, revoked (never the secrets)."""
    from starling.control.state import ControllerState

    state = ControllerState(output / "starling.db")
    table = Table()
    for column in ("id", "role", "user", "created", "expires", "revoked"):
        table.add_column(column)
    for entry in state.tokens_store.list():
        when = {
            k: time.strftime("%Y-%m-%d %H:%M", time.gmtime(v)) if isinstance(v, float) else ""
            for k, v in entry.items()
        }
        table.add_row(
            str(entry["id"]),
            str(entry["role"]),
            str(entry["user"]),
            when["created"],
            when["expires"],
            when["revoked"],
        )
    state.close()
    console.print(table)


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="the token's id (see `token list`)")],
    output: Output = Path("starling-output"),
) -> None:
    """Revoke a token at once."""
    from starling.control.state import ControllerState

    state = ControllerState(output / "starling.db")
    revoked = state.tokens_store.revoke(token_id)
    state.close()
    if not revoked:
        report_error(f"no token {token_id!r} to revoke")
        raise typer.Exit(2)
    console.print(f"revoked {token_id}")


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


@ctl_app.command("insert-stage")
def insert_stage(
    name: str,
    after: Annotated[
        str | None, typer.Option(help="the stage it follows in the chain (it reads what that stage writes)")
    ] = None,
    beside: Annotated[
        str | None, typer.Option(help="instead: a stage it runs beside, off the chain (nothing waits for it)")
    ] = None,
    component: Annotated[
        list[str] | None,
        typer.Option(help='a component: its name, or a JSON object {"use": ..., "name": ..., "config": ...}'),
    ] = None,
    replicas: int = 1,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Insert a stage into the running chain (or beside it), with no alert lost or taken twice."""
    components = [
        json_object(text, "a component") if text.lstrip().startswith("{") else {"use": text}
        for text in component or []
    ]
    place = {"after": after} if beside is None else {"beside": beside}
    body = {"name": name, **place, "components": components, "replicas": replicas}
    console.print(ask(controller, token, lambda c: c.insert_stage(body)))


@ctl_app.command("remove-stage")
def remove_stage(name: str, controller: Controller = None, token: Token = None) -> None:
    """Remove a stage from between two others while the chain runs."""
    console.print(ask(controller, token, lambda c: c.remove_stage(name)))


@ctl_app.command("split-stage")
def split_stage(
    stage: str,
    name: Annotated[str, typer.Option(help="the new stage's name")],
    component: Annotated[list[str], typer.Option(help="a component to move into it (repeatable)")],
    replicas: int = 1,
    controller: Controller = None,
    token: Token = None,
) -> None:
    """Move components of a stage into a new stage right after it, while the chain runs."""
    console.print(ask(controller, token, lambda c: c.split_stage(stage, name, component, replicas)))


@ctl_app.command("fuse-stages")
def fuse_stages(stage: str, following: str, controller: Controller = None, token: Token = None) -> None:
    """Make a stage and the one after it (FOLLOWING) one stage, while the chain runs."""
    console.print(ask(controller, token, lambda c: c.fuse_stages(stage, following)))


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


__all__ = ["controller", "ctl_app", "token_app"]
