"""The runtime a worker's control API acts on (kept apart from the controller's: a worker never imports
the controller, and starts the faster for it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from starling.core.live import LiveRuntime


async def current_runtime(request: Request) -> LiveRuntime:
    runtime: LiveRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[LiveRuntime, Depends(current_runtime)]
