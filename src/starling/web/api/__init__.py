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
``GET /api/my/watchlists`` and ``.../watchmaps``  the user's watchlists and watchmaps (at the
``PUT``, ``GET``, ``DELETE .../{name}``           controller): upload, a list's targets, remove
``GET /api/pipeline``                              the stages, their counts, lag, dead letters; the
                                                   autoscaler's decisions (at the controller)
``PUT .../stages/{stage}/replicas``, ``POST``,     an operator's changes to a stage: its replicas,
``PATCH``, ``DELETE .../components``               its components
=================================================  ==============================================

Every table read is an ADQL query through TAP's store (``TapStore.run``): TAP's read-only connections,
its time limit, and the viewer's access to filter matches enforced by the database. Refusals are
``{"detail": ...}`` with a 4xx; the store down or too slow is a 503; no traceback reaches a client.
The ``/api/my`` routes are the user's filters at the controller, asked with the request's own token
(``my_filters``), and its watchlists and watchmaps (``my_watch``); so are the ``/api/pipeline``
routes (``pipeline``), which the controller answers as that token may see.
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
    my_watch,
    object_annotations,
    objects,
    pipeline,
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
    my_watch,
    pipeline,
):
    router.include_router(_resource.router)


def describe() -> dict[str, str]:
    return {"api": "/api", "api_documentation": "/docs"}
