"""What the commands that talk to the controller share: the options, the client, and its errors shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from starling.cli.terminal import report_error
from starling.control.client import ControllerClient
from starling.errors import ControllerRefusedError, ControllerUnreachableError

Controller = Annotated[str | None, typer.Option(help="controller URL (or $STARLING_CONTROLLER)")]
Token = Annotated[str | None, typer.Option(help="access token (or $STARLING_TOKEN)")]

T = TypeVar("T")


def ask(controller: str | None, token: str | None, request: Callable[[ControllerClient], T]) -> T:
    """Make one request of the controller; a refusal or no answer is shown and ends the command."""
    try:
        return request(ControllerClient(controller, token))
    except ControllerUnreachableError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    except ControllerRefusedError as exc:
        report_error(str(exc.detail), label=f"refused ({exc.status})")
        raise typer.Exit(1) from None


def json_object(text: str, what: str = "the value") -> dict[str, Any]:
    """A JSON object given on the command line, or a clear error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        report_error(f"not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        report_error(f"{what} must be a JSON object")
        raise typer.Exit(2)
    return value
