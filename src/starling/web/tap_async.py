"""TAP's asynchronous queries: ``/tap/async``, the UWS 1.1 job list and jobs (``starling.web.jobs``).

Every change answers 303 See Other to the job (or to the list, after a delete), as UWS says; a job that
does not exist is a 404, a change it does not allow a 400 with the reason, in plain text.

A job is its maker's: made with a user's token, only that token's user sees or changes it (to anyone
else it does not exist); made without one, it is anonymous, and the job list without a token lists the
anonymous jobs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from starling.control.tokens import Principal
from starling.vo.tap_upload import MAX_UPLOAD_BYTES
from starling.vo.uws import FINAL_PHASES, PHASES, iso, job_xml, jobs_xml
from starling.vo.votable import error_votable
from starling.web.identity import viewer
from starling.web.jobs import Job, JobError, Jobs, NoSuchJobError
from starling.web.parameters import parameters_of, uploaded_parts

XML = "text/xml"
MAX_WAIT_S = 15.0  # longer blocking is cut here: clients' read timeouts are often 30 s

Viewer = Annotated[Principal | None, Depends(viewer)]


def _owned(request: Request, job_id: str, who: Viewer) -> None:
    """Refuses (404, as if it did not exist) a job that is not the viewer's."""
    try:
        found = _jobs(request).get(job_id)
    except NoSuchJobError:
        return  # the route says so itself
    if found.owner != (who.user if who is not None else None):
        raise HTTPException(404, f"no job {job_id!r}")


router = APIRouter(prefix="/tap/async", tags=["TAP"])
OWNED = [Depends(_owned)]


def _jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.tap_jobs
    return jobs


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/tap/async"


def _refused(exc: JobError) -> Response:
    return PlainTextResponse(str(exc), status_code=404 if isinstance(exc, NoSuchJobError) else 400)


def _to_job(request: Request, job_id: str) -> Response:
    return RedirectResponse(f"{_base(request)}/{job_id}", status_code=303)


@router.get("", response_class=Response)
async def job_list(request: Request, who: Viewer) -> Response:
    phases = [p.upper() for key, p in request.query_params.multi_items() if key.upper() == "PHASE"]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        return PlainTextResponse(f"PHASE={unknown[0]} is not a UWS phase", status_code=400)
    parameters = {k.upper(): v for k, v in request.query_params.items()}
    try:
        after = (
            datetime.fromisoformat(parameters["AFTER"].replace("Z", "+00:00"))
            if "AFTER" in parameters
            else None
        )
        last = int(parameters["LAST"]) if "LAST" in parameters else None
    except ValueError:
        return PlainTextResponse("AFTER is an ISO 8601 time and LAST a whole number", status_code=400)
    if last is not None and last <= 0:
        return PlainTextResponse("LAST must be a positive whole number", status_code=400)
    owner = who.user if who is not None else None
    views = await run_in_threadpool(_jobs(request).listing, phases, after, last, _base(request), owner)
    return Response(jobs_xml(views, _base(request)), media_type=XML)


@router.post("", response_class=Response)
async def create_job(request: Request, who: Viewer) -> Response:
    parameters = await parameters_of(request)
    parts = await uploaded_parts(request, MAX_UPLOAD_BYTES)
    owner = who.user if who is not None else None
    try:
        job_id = await run_in_threadpool(_jobs(request).create, parameters, parts, owner)
    except JobError as exc:
        return _refused(exc)
    return _to_job(request, job_id)


@router.get("/{job_id}", response_class=Response, dependencies=OWNED)
async def job(request: Request, job_id: str) -> Response:
    jobs = _jobs(request)
    parameters = {k.upper(): v for k, v in request.query_params.items()}
    try:
        found = jobs.get(job_id, _base(request))
        if "WAIT" in parameters:
            found = await _wait(jobs, request, job_id, parameters["WAIT"], parameters.get("PHASE"))
    except JobError as exc:
        return _refused(exc)
    except ValueError:
        return PlainTextResponse("WAIT is a whole number of seconds", status_code=400)
    return Response(job_xml(found.view), media_type=XML)


async def _wait(jobs: Jobs, request: Request, job_id: str, wait: str, phase: str | None) -> Job:
    """UWS 1.1's blocking: while the job is in ``phase`` (any active phase when none), up to WAIT s."""
    seconds = float(wait)
    limit = MAX_WAIT_S if seconds < 0 else min(seconds, MAX_WAIT_S)
    found = jobs.get(job_id, _base(request))
    first = found.view.phase
    active = ("PENDING", "QUEUED", "EXECUTING") if phase is None else (phase.upper(),)
    if first not in active or first in FINAL_PHASES or (phase is None and first == "PENDING"):
        return found
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        found = jobs.get(job_id, _base(request))
        if found.view.phase != first:
            break
    return found


@router.post("/{job_id}", response_class=Response, dependencies=OWNED)
async def change_job(request: Request, job_id: str) -> Response:
    parameters = await parameters_of(request)
    jobs = _jobs(request)
    try:
        if parameters.get("ACTION", "").upper() == "DELETE":
            await run_in_threadpool(jobs.delete, job_id)
            return RedirectResponse(_base(request), status_code=303)
        await run_in_threadpool(jobs.set_parameters, job_id, parameters)
    except JobError as exc:
        return _refused(exc)
    return _to_job(request, job_id)


@router.delete("/{job_id}", response_class=Response, dependencies=OWNED)
async def delete_job(request: Request, job_id: str) -> Response:
    try:
        await run_in_threadpool(_jobs(request).delete, job_id)
    except JobError as exc:
        return _refused(exc)
    return RedirectResponse(_base(request), status_code=303)


@router.get("/{job_id}/{part}", response_class=Response, dependencies=OWNED)
def job_part(request: Request, job_id: str, part: str) -> Response:
    try:
        view = _jobs(request).get(job_id, _base(request)).view
    except JobError as exc:
        return _refused(exc)
    text = {
        "phase": view.phase,
        "executionduration": str(view.execution_duration_s),
        "destruction": iso(view.destruction) or "",
        "quote": iso(view.quote) or "",
        "owner": view.owner or "",
    }
    if part in text:
        return PlainTextResponse(text[part])
    if part == "error":
        if view.error is None:
            return PlainTextResponse(f"job {job_id} has no error", status_code=404)
        return Response(error_votable(view.error), media_type="application/x-votable+xml")
    if part in ("parameters", "results"):
        return Response(job_xml(view), media_type=XML)  # both are in the job document, whole
    return PlainTextResponse(f"a job has no {part!r}", status_code=404)


@router.post("/{job_id}/{part}", response_class=Response, dependencies=OWNED)
async def change_job_part(request: Request, job_id: str, part: str) -> Response:
    parameters = await parameters_of(request)
    jobs = _jobs(request)
    changes = {
        "phase": ("PHASE", jobs.set_phase),
        "executionduration": ("EXECUTIONDURATION", jobs.set_duration),
        "destruction": ("DESTRUCTION", jobs.set_destruction),
    }
    if part == "parameters":
        try:
            await run_in_threadpool(jobs.set_parameters, job_id, parameters)
        except JobError as exc:
            return _refused(exc)
        return _to_job(request, job_id)
    if part not in changes:
        return PlainTextResponse(f"a job's {part!r} cannot be changed", status_code=405)
    name, change = changes[part]
    if name not in parameters:
        return PlainTextResponse(f"{name} is missing", status_code=400)
    try:
        await run_in_threadpool(change, job_id, parameters[name])
    except JobError as exc:
        return _refused(exc)
    return _to_job(request, job_id)


@router.get("/{job_id}/results/result", response_class=Response, dependencies=OWNED)
def result(request: Request, job_id: str) -> Response:
    jobs = _jobs(request)
    try:
        found = jobs.get(job_id, _base(request))
    except JobError as exc:
        return _refused(exc)
    path = jobs.result_path(job_id)
    if found.view.phase != "COMPLETED" or not path.exists():
        return PlainTextResponse(f"job {job_id} is {found.view.phase}: no result", status_code=404)
    return FileResponse(path, media_type=found.result_type or "application/octet-stream")
