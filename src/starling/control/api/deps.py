"""What a handler is given from its app: the controller, or the runtime, each kept in ``app.state``.

The apps are built once per process around one object (``app.py``); reading it from the request
keeps the handlers module-level functions, free of closures over that object.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from starling.control.controller import Controller
from starling.core.live import LiveRuntime


async def current_controller(request: Request) -> Controller:
    controller: Controller = request.app.state.controller
    return controller


async def current_runtime(request: Request) -> LiveRuntime:
    runtime: LiveRuntime = request.app.state.runtime
    return runtime


Control = Annotated[Controller, Depends(current_controller)]
Runtime = Annotated[LiveRuntime, Depends(current_runtime)]
