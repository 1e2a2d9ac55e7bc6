"""IVOA UWS 1.1 documents (https://www.ivoa.net/documents/UWS/): a job, and the list of jobs.

Elements in the order the UWS schema's sequence gives them; times in ISO 8601, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PHASES = (
    "PENDING",
    "QUEUED",
    "EXECUTING",
    "COMPLETED",
    "ERROR",
    "ABORTED",
    "UNKNOWN",
    "HELD",
    "SUSPENDED",
    "ARCHIVED",
)
FINAL_PHASES = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class JobResult:
    result_id: str
    href: str
    media_type: str
    size: int | None = None


@dataclass
class JobView:
    job_id: str
    phase: str
    creation_time: datetime
    execution_duration_s: int
    destruction: datetime | None
    parameters: dict[str, str]
    run_id: str | None = None
    owner: str | None = None
    quote: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    results: list[JobResult] = field(default_factory=list)
    error: str | None = None


def _element(name: str, value: str | None, nillable: bool = True) -> str:
    if value is None:
        return f'  <uws:{name} xsi:nil="true"/>\n' if nillable else ""
    return f"  <uws:{name}>{escape(value)}</uws:{name}>\n"


def job_xml(job: JobView) -> str:
    parameters = "".join(
        f"    <uws:parameter id={quoteattr(name)}>{escape(value)}</uws:parameter>\n"
        for name, value in job.parameters.items()
    )
    results = "".join(
        f'    <uws:result id={quoteattr(r.result_id)} xlink:type="simple" xlink:href={quoteattr(r.href)}'
        f" mime-type={quoteattr(r.media_type)}" + (f' size="{r.size}"' if r.size is not None else "") + "/>\n"
        for r in job.results
    )
    error = ""
    if job.error is not None:
        error = (
            '  <uws:errorSummary type="fatal" hasDetail="true">\n'
            f"    <uws:message>{escape(job.error)}</uws:message>\n"
            "  </uws:errorSummary>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<uws:job xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">\n'
        + _element("jobId", job.job_id, nillable=False)
        + (_element("runId", job.run_id, nillable=False) if job.run_id else "")
        + _element("ownerId", job.owner)
        + _element("phase", job.phase, nillable=False)
        + _element("quote", iso(job.quote))
        + _element("creationTime", iso(job.creation_time), nillable=False)
        + _element("startTime", iso(job.start_time))
        + _element("endTime", iso(job.end_time))
        + _element("executionDuration", str(job.execution_duration_s), nillable=False)
        + _element("destruction", iso(job.destruction))
        + f"  <uws:parameters>\n{parameters}  </uws:parameters>\n"
        + f"  <uws:results>\n{results}  </uws:results>\n"
        + error
        + "</uws:job>\n"
    )


def jobs_xml(jobs: list[JobView], base_url: str) -> str:
    """The job list: a reference to each job, with its phase and creation time."""
    references = "".join(
        f'  <uws:jobref id={quoteattr(job.job_id)} xlink:type="simple"'
        f" xlink:href={quoteattr(f'{base_url}/{job.job_id}')}>\n"
        f"    <uws:phase>{job.phase}</uws:phase>\n"
        + (f"    <uws:runId>{escape(job.run_id)}</uws:runId>\n" if job.run_id else "")
        + f"    <uws:creationTime>{iso(job.creation_time)}</uws:creationTime>\n"
        "  </uws:jobref>\n"
        for job in jobs
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<uws:jobs xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">\n'
        f"{references}</uws:jobs>\n"
    )
