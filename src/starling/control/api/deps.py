"""What a handler is given from its app: the controller, or the runtime, each kept in ``app.state``.

The apps are built once per process around one object (``app.py``); reading it from the request
keeps the handlers module-level functions, free of closures over that object.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from starling.control.api.common import refuse
from starling.control.controller import Controller
from starling.core.stages import stage_names


async def current_controller(request: Request) -> Controller:
    controller: Controller = request.app.state.controller
    return controller


Control = Annotated[Controller, Depends(current_controller)]


async def known_stage(
    stage: Annotated[str, Path(description="a stage of the pipeline (default: ingest, filter, distribute)")],
    controller: Control,
) -> str:
    """The stage a path names: 404 when the pipeline has no stage of that name."""
    names = stage_names(controller.desired.spec)
    if stage not in names:
        refuse(404, f"no stage {stage!r}; the stages are {', '.join(names)}")
    return stage


Stage = Annotated[str, Depends(known_stage)]
