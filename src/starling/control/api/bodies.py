"""The stored bodies the pipeline refers to (``starling.core.bodies``): what a worker fetches to build a
component whose config holds a reference (a watchlist's targets, a watchmap's region).

Only the workers' own token and an operator's read them: a user reads its own lists through
``/watchlists`` and ``/watchmaps``, never another's body by its digest.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from starling.control.api.auth import BODY_READER
from starling.control.api.common import AUTH_RESPONSES, problem, refuse
from starling.control.api.deps import Control
from starling.core.bodies import DIGEST_PATTERN

router = APIRouter(dependencies=BODY_READER, responses=AUTH_RESPONSES, tags=["pipeline"])


@router.get(
    "/bodies/{digest}",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "the body, as the bytes its digest names"},
        404: problem("no body of that digest is kept"),
        422: problem("not a digest"),
    },
)
def get_body(
    digest: Annotated[
        str, Path(pattern=DIGEST_PATTERN, description="'sha256:' and 64 lower-case hex digits")
    ],
    controller: Control,
) -> Response:
    """One stored body, byte for byte (check it against its digest before use)."""
    data = controller.state.body(digest)
    if data is None:
        refuse(404, f"no body {digest} is kept")
    return Response(data, media_type="application/json")
