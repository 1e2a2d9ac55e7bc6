"""The portal's data API, ``/api`` of ``starling web``: JSON over the store for pages and scripts.

=================================================  ==============================================
``GET /api/objects/{survey}/{object_id}``          an object: position, counts, times, latest alert
``.../alerts``                                     its alerts, newest first, a page at a time
``.../lightcurve``                                 detections, upper limits, forced photometry
``.../annotations``                                each alert's annotations
``.../matches``                                    the filters its alerts passed (the viewer's)
``GET /api/alerts/{survey}/{alert_id}``            one alert, with its annotations
``.../cutouts/{role}.fits`` and ``.png``           its stamps: science, template, difference
``.../explain?expression=`` or ``?filter=``        why a filter did (not) pass it: each part's value
``GET /api/search/cone``                           objects in a cone, nearest first
``GET /api/filters/{name}/matches``                a filter's matches since a time (the viewer's)
``GET /api/fields``                                the fields a filter may name
``POST /api/filters/check`` and ``.../try``        a filter checked; tried on the latest alerts
``GET`` and ``POST /api/my/filters``               the user's filters (at the controller); a new one
``PATCH`` and ``DELETE /api/my/filters/{name}``    change or remove one; ``.../pause``, ``/resume``
=================================================  ==============================================

Every table read is an ADQL query through TAP's store (``TapStore.run``): TAP's read-only connections,
its time limit, and the viewer's access to filter matches enforced by the database. Refusals are
``{"detail": ...}`` with a 4xx; the store down or too slow is a 503; no traceback reaches a client.
The ``/api/my`` routes are the user's filters at the controller, asked with the request's own token
(``my_filters``).
"""

from __future__ import annotations

from fastapi import APIRouter

# The annotations resource is `object_annotations`: in a package whose __init__ says `from __future__
# import annotations`, the attribute `annotations` is that feature, not a submodule.
from starling.web.api import (
    alerts,
    cutouts,
    explain,
    filters,
    lightcurve,
    matches,
    my_filters,
    object_annotations,
    objects,
    search,
)
from starling.web.api.cutouts import CutoutSource

__all__ = ["CutoutSource", "describe", "router"]

router = APIRouter(prefix="/api")
for _resource in (
    objects,
    lightcurve,
    object_annotations,
    matches,
    alerts,
    explain,
    cutouts,
    search,
    filters,
    my_filters,
):
    router.include_router(_resource.router)


def describe() -> dict[str, str]:
    return {"api": "/api", "api_documentation": "/docs"}
