"""``/api/alerts/{survey}/{alert_id}/cutouts/{role}.fits`` and ``.png``: an alert's stamps (science,
template, difference), as a FITS file and as a picture (:mod:`starling.web.api.stamps`).

Stamps are files beside the store's tables (``starling.store.cutouts``), and where each alert's are is
in its row (``alerts.cutouts``), a column TAP does not serve: they are read as the store reads them,
``AlertStore.cutout``, from the folder the service was given (``starling web --cutouts``; by default the
store sink's, beside a SQLite store). The store is opened on the first request for a stamp, so a
service started before anything is stored serves stamps once there are some.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response

from starling.errors import OutageError, StoreError, StoreUnavailableError
from starling.store.base import AlertStore
from starling.store.location import is_postgres, shown_location, sqlite_path
from starling.store.open import open_store
from starling.web.api.common import NOT_FOUND, UNAVAILABLE, AlertIdPath, SurveyPath, problem
from starling.web.api.stamps import StampError, fits_file, stamp_png

log = logging.getLogger(__name__)

router = APIRouter(prefix="/alerts", tags=["cutouts"])

Role = Literal["science", "template", "difference"]
RolePath = Annotated[Role, Path(description="which stamp: science, template or difference")]
# A stamp never changes once stored (a replay keeps pointing at the first copy): caches may keep it.
_CACHED = {"Cache-Control": "public, max-age=86400"}


class CutoutSource:
    """The stamps of the store at ``location``, kept under ``folder`` (None: the service serves none)."""

    def __init__(self, location: str | FilePath, folder: FilePath | None) -> None:
        self.location = location
        self.folder = folder
        self._store: AlertStore | None = None
        self._lock = threading.Lock()

    def read(self, survey: str, alert_id: int, role: str) -> bytes:
        """The stamp as stored. StoreError: none such (no alert, no such stamp, removed by retention);
        OutageError: the store or the folder cannot be read now."""
        if self.folder is None:
            raise StoreError("this service serves no cutouts: it was started without --cutouts")
        return self._opened().cutout(survey, alert_id, role)

    def _opened(self) -> AlertStore:
        with self._lock:
            if self._store is None:
                if not is_postgres(self.location) and not sqlite_path(self.location).exists():
                    # Opening would make an empty store: there is nothing stored yet, so no alert.
                    raise StoreError(f"nothing is stored yet at {shown_location(self.location)}")
                try:
                    self._store = open_store(self.location, cutouts=self.folder)
                except StoreError as exc:  # a store that cannot be opened is down, not without the alert
                    raise StoreUnavailableError(str(exc)) from exc
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _stamp(request: Request, survey: str, alert_id: int, role: str) -> bytes:
    """The stamp's FITS file; 404 when there is none, 503 when it cannot be read now."""
    source: CutoutSource = request.app.state.cutouts
    try:
        return fits_file(source.read(survey, alert_id, role))
    except OutageError as exc:
        log.warning(f"cutout {survey} {alert_id} {role} not read: {exc}")
        raise HTTPException(503, f"the cutouts cannot be read now; try again in a moment ({exc})") from None
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from None
    except StampError as exc:
        log.error(f"cutout {survey} {alert_id} {role}: {exc}")
        raise HTTPException(500, str(exc)) from None


def _binary(media_type: str, what: str) -> dict[int | str, dict[str, object]]:
    return {
        200: {
            "description": what,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        },
        500: problem("the stored stamp is not a FITS image"),
        **NOT_FOUND,
        **UNAVAILABLE,
    }


@router.get(
    "/{survey}/{alert_id}/cutouts/{role}.fits",
    response_class=Response,
    summary="A cutout as FITS",
    description="The stamp as the survey sent it, ungzipped when it was gzipped (ZTF's are): a FITS file.",
    responses=_binary("application/fits", "the FITS file"),
)
def cutout_fits(survey: SurveyPath, alert_id: AlertIdPath, role: RolePath, request: Request) -> Response:
    data = _stamp(request, survey, alert_id, role)
    disposition = f'inline; filename="{survey}-{alert_id}-{role}.fits"'
    return Response(
        data, media_type="application/fits", headers={**_CACHED, "Content-Disposition": disposition}
    )


@router.get(
    "/{survey}/{alert_id}/cutouts/{role}.png",
    response_class=Response,
    summary="A cutout as a picture",
    description="The stamp drawn as a PNG of its own size: zscale (astropy's ZScaleInterval), a linear "
    "grey ramp, blank (NaN) pixels in magenta (255, 0, 255), the first FITS row at the bottom as DS9 "
    "shows it (not rotated: north as the survey gives it).",
    responses=_binary("image/png", "the PNG picture"),
)
def cutout_png(survey: SurveyPath, alert_id: AlertIdPath, role: RolePath, request: Request) -> Response:
    data = _stamp(request, survey, alert_id, role)
    try:
        picture = stamp_png(data)
    except StampError as exc:
        log.error(f"cutout {survey} {alert_id} {role}: {exc}")
        raise HTTPException(500, str(exc)) from None
    return Response(picture, media_type="image/png", headers=_CACHED)
