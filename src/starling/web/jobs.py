"""TAP's asynchronous jobs (UWS 1.1): kept in a SQLite file with their results beside it, so that they
survive a restart of the service; run by a few threads of their own.

A job is PENDING when made, QUEUED once asked to run, EXECUTING, then COMPLETED (its result written as
a file), ERROR (its message kept) or ABORTED. An abort stops a running query at once (the store's
query runner checks its flag). A service that stops with jobs queued or running finds them queued
again when it starts: a query only reads, so running it again is safe. Jobs past their destruction
time are deleted, results and all.

A job made with a user's token is that user's (``owner``): only that user sees it, and its query sees
that user's filter matches; a job made without a token is anonymous and reads the public tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starling.errors import OutageError, StarlingError
from starling.vo.tap_query import TapQueryError, TapStore
from starling.vo.tap_upload import Upload, parse_upload_parameter, read_uploads
from starling.vo.uws import FINAL_PHASES, JobResult, JobView
from starling.vo.votable import StreamWriter, stream_format

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 600
MAX_DURATION_S = 3600
RETENTION = timedelta(days=7)
MAX_JOBS = 10_000  # kept at once; past it the oldest finished jobs go first

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, run_id TEXT, phase TEXT NOT NULL, created TEXT NOT NULL,
    started TEXT, ended TEXT, duration_s INTEGER NOT NULL, destruction TEXT NOT NULL,
    parameters TEXT NOT NULL, error TEXT, result_type TEXT, result_size INTEGER, owner TEXT
)
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass
class Job:
    view: JobView
    result_type: str | None
    owner: str | None = None


class JobError(StarlingError):
    """A request about a job that cannot be met (HTTP 400); ``NoSuchJobError`` is a 404."""


class NoSuchJobError(JobError):
    """No job of that id (never made, deleted, or past its destruction time)."""


class Jobs:
    def __init__(
        self, folder: Path, store: TapStore, default_maxrec: int, hard_maxrec: int, workers: int = 2
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.default_maxrec, self.hard_maxrec = default_maxrec, hard_maxrec
        self._db = sqlite3.connect(folder / "jobs.db", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        if "owner" not in {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}:
            self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")  # kept from before jobs had owners
        self._lock = threading.Lock()
        self._cancels: dict[str, threading.Event] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tap-job")
        self.remove_expired()
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET phase = 'QUEUED', started = NULL WHERE phase IN ('QUEUED', 'EXECUTING')"
            )
            waiting = [
                row[0]
                for row in self._db.execute("SELECT job_id FROM jobs WHERE phase = 'QUEUED' ORDER BY created")
            ]
        for job_id in waiting:
            self._submit(job_id)

    # -- reading -------------------------------------------------------------------------------

    def get(self, job_id: str, base_url: str = "") -> Job:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NoSuchJobError(f"no job {job_id!r} (finished jobs are kept {RETENTION.days} days)")
        return self._job(row, base_url)

    def _job(self, row: tuple[object, ...], base_url: str) -> Job:
        (
            job_id,
            run_id,
            phase,
            created,
            started,
            ended,
            duration,
            destruction,
            parameters,
            error,
            kind,
            size,
            owner,
        ) = row
        results = []
        if phase == "COMPLETED" and kind:
            results.append(
                JobResult("result", f"{base_url}/{job_id}/results/result", str(kind), int(str(size or 0)))
            )
        view = JobView(
            job_id=str(job_id),
            phase=str(phase),
            creation_time=_time(str(created)) or _now(),
            execution_duration_s=int(str(duration)),
            destruction=_time(str(destruction)),
            parameters=json.loads(str(parameters)),
            run_id=str(run_id) if run_id else None,
            start_time=_time(str(started) if started else None),
            end_time=_time(str(ended) if ended else None),
            results=results,
            error=str(error) if error else None,
            owner=str(owner) if owner else None,
        )
        return Job(view, str(kind) if kind else None, str(owner) if owner else None)

    def listing(
        self, phases: list[str], after: datetime | None, last: int | None, base_url: str, owner: str | None
    ) -> list[JobView]:
        """UWS 1.1's job list of ``owner`` (None: the anonymous jobs): by default every job but the
        archived, oldest first; ``last``: the newest."""
        sql, args = "SELECT * FROM jobs WHERE owner IS ? AND phase != 'ARCHIVED'", [owner]
        if phases:
            sql = f"SELECT * FROM jobs WHERE owner IS ? AND phase IN ({', '.join('?' * len(phases))})"
            args.extend(phases)
        if after is not None:
            sql += " AND created > ?"
            args.append(after.astimezone(UTC).isoformat())
        sql += " ORDER BY created DESC" + (f" LIMIT {int(last)}" if last is not None else "")
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._job(row, base_url).view for row in reversed(rows)]

    def result_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.result"

    def _parts(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.parts"

    def _uploads(self, job_id: str, value: str) -> list[Upload]:
        """The job's UPLOAD tables, from the parts kept with it (files named by their part's hash)."""
        folder = self._parts(job_id)
        parts = {}
        for _, where in parse_upload_parameter(value):
            part = where.removeprefix("param:")
            path = folder / hashlib.sha256(part.encode()).hexdigest()
            if path.exists():
                parts[part] = path.read_bytes()
        return read_uploads(value, parts)

    # -- changing ------------------------------------------------------------------------------

    def create(
        self, parameters: dict[str, str], parts: dict[str, bytes] | None = None, owner: str | None = None
    ) -> str:
        """A new PENDING job of ``owner`` (RUN at once when PHASE=RUN is among the parameters); ``parts``:
        the files sent with it, for its UPLOAD, kept with the job."""
        query = parameters.get("QUERY")
        if not query:
            raise JobError("QUERY is missing: give an ADQL query")
        job_id = uuid.uuid4().hex
        for name, data in (parts or {}).items():
            folder = self._parts(job_id)
            folder.mkdir(exist_ok=True)
            (folder / hashlib.sha256(name.encode()).hexdigest()).write_bytes(data)
        now = _now()
        kept = {k: v for k, v in parameters.items() if k not in ("PHASE", "RUNID")}
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs "
                "(job_id, run_id, phase, created, duration_s, destruction, parameters, owner) "
                "VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    parameters.get("RUNID"),
                    now.isoformat(),
                    DEFAULT_DURATION_S,
                    (now + RETENTION).isoformat(),
                    json.dumps(kept),
                    owner,
                ),
            )
        self._trim()
        if parameters.get("PHASE", "").upper() == "RUN":
            self.set_phase(job_id, "RUN")
        return job_id

    def set_phase(self, job_id: str, phase: str) -> None:
        job = self.get(job_id)
        wanted = phase.upper()
        if wanted == "RUN":
            if job.view.phase != "PENDING":
                raise JobError(f"job {job_id} is {job.view.phase}; only a PENDING job can be run")
            self._update(job_id, phase="QUEUED")
            self._submit(job_id)
        elif wanted == "ABORT":
            if job.view.phase in FINAL_PHASES:
                raise JobError(f"job {job_id} is {job.view.phase} already")
            self._cancels.setdefault(job_id, threading.Event()).set()
            self._update(job_id, phase="ABORTED", ended=_now().isoformat())
        else:
            raise JobError(f"PHASE={phase} is not a phase to ask for; RUN or ABORT")

    def set_duration(self, job_id: str, seconds: str) -> None:
        job = self.get(job_id)
        if job.view.phase != "PENDING":
            raise JobError(f"job {job_id} is {job.view.phase}; its duration is fixed once it runs")
        try:
            value = int(seconds)
        except ValueError:
            raise JobError(f"EXECUTIONDURATION must be a whole number of seconds, not {seconds!r}") from None
        self._update(job_id, duration_s=max(1, min(value, MAX_DURATION_S)) if value > 0 else MAX_DURATION_S)

    def set_destruction(self, job_id: str, moment: str) -> None:
        self.get(job_id)
        try:
            wanted = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            raise JobError(f"DESTRUCTION must be an ISO 8601 time, not {moment!r}") from None
        wanted = wanted if wanted.tzinfo else wanted.replace(tzinfo=UTC)
        self._update(job_id, destruction=min(wanted, _now() + RETENTION).isoformat())

    def set_parameters(self, job_id: str, parameters: dict[str, str]) -> None:
        job = self.get(job_id)
        if job.view.phase != "PENDING":
            raise JobError(f"job {job_id} is {job.view.phase}; parameters change only while PENDING")
        self._update(job_id, parameters=json.dumps({**job.view.parameters, **parameters}))

    def delete(self, job_id: str) -> None:
        self.get(job_id)
        self._cancels.setdefault(job_id, threading.Event()).set()
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        self.result_path(job_id).unlink(missing_ok=True)
        shutil.rmtree(self._parts(job_id), ignore_errors=True)

    def remove_expired(self) -> int:
        with self._lock:
            expired = [
                r[0]
                for r in self._db.execute(
                    "SELECT job_id FROM jobs WHERE destruction < ?", (_now().isoformat(),)
                )
            ]
        for job_id in expired:
            self.delete(job_id)
        return len(expired)

    def _trim(self) -> None:
        with self._lock:
            extra = [
                r[0]
                for r in self._db.execute(
                    "SELECT job_id FROM jobs WHERE phase IN ('COMPLETED', 'ERROR', 'ABORTED') "
                    "ORDER BY created DESC LIMIT -1 OFFSET ?",
                    (MAX_JOBS,),
                )
            ]
        for job_id in extra:
            self.delete(job_id)

    def _update(self, job_id: str, **values: object) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {columns} WHERE job_id = ?", (*values.values(), job_id))

    # -- running -------------------------------------------------------------------------------

    def _submit(self, job_id: str) -> None:
        self._cancels.setdefault(job_id, threading.Event())
        self._pool.submit(self._execute, job_id)

    def _execute(self, job_id: str) -> None:
        try:
            job = self.get(job_id)
        except NoSuchJobError:
            return
        cancel = self._cancels.setdefault(job_id, threading.Event())
        if job.view.phase != "QUEUED" or cancel.is_set():
            return
        self._update(job_id, phase="EXECUTING", started=_now().isoformat())
        parameters = {k.upper(): v for k, v in job.view.parameters.items()}
        try:
            media_type, stream = stream_format(parameters.get("RESPONSEFORMAT") or parameters.get("FORMAT"))
        except KeyError:
            self._finish(job_id, cancel, error="RESPONSEFORMAT is not served; see /tap/capabilities")
            return
        try:
            size = self._write_result(job, parameters, cancel, stream)
        except (TapQueryError, OutageError, StarlingError) as exc:
            self._finish(job_id, cancel, error=str(exc))
        except Exception as exc:  # a job never takes its thread down; the log has the trace
            log.exception(f"TAP job {job_id} failed")
            self._finish(job_id, cancel, error=f"the job failed: {type(exc).__name__}")
        else:
            self._finish(job_id, cancel, media_type=media_type, size=size)

    def _write_result(
        self, job: Job, parameters: dict[str, str], cancel: threading.Event, stream: StreamWriter
    ) -> int:
        """Run the job's query and write its result file as the rows are read (a result of a million
        rows is never all in memory); its size in bytes."""
        job_id = job.view.job_id
        maxrec = self._maxrec(parameters.get("MAXREC"))
        uploads = self._uploads(job_id, parameters["UPLOAD"]) if parameters.get("UPLOAD") else []
        query = parameters.get("QUERY", "")
        result = self.store.run(query, maxrec, job.view.execution_duration_s, cancel, uploads, job.owner)
        try:
            with self.result_path(job_id).open("wb") as out:
                for piece in stream(result.columns, result.chunks, result.end, query=query):
                    out.write(piece)
        finally:
            result.close()
        if result.end.error is not None:
            raise TapQueryError(result.end.error)
        return self.result_path(job_id).stat().st_size

    def _finish(
        self,
        job_id: str,
        cancel: threading.Event,
        error: str | None = None,
        media_type: str | None = None,
        size: int | None = None,
    ) -> None:
        if cancel.is_set():  # aborted (or deleted) while running: it stays so
            return
        if error is not None:
            self._update(job_id, phase="ERROR", ended=_now().isoformat(), error=error)
        else:
            self._update(
                job_id, phase="COMPLETED", ended=_now().isoformat(), result_type=media_type, result_size=size
            )

    def _maxrec(self, text: str | None) -> int:
        if not text:
            return self.default_maxrec
        try:
            value = int(text)
        except ValueError:
            raise TapQueryError(f"MAXREC must be a whole number, not {text!r}") from None
        return max(0, min(value, self.hard_maxrec))

    def close(self) -> None:
        for cancel in self._cancels.values():
            cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._db.close()
