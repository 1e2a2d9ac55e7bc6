"""An offer-set request in the newest dialect, read strictly: what it asks, or every reason it cannot.

A request is first brought to the newest dialect (``normalize``), then read here. Nothing unknown is let
through: a field the dialect does not have, a kind no one defined, a value of the wrong type, each is a
reason (with its path) for a NO. Kinds that are defined but that Starling does not run (notebooks,
Singularity, data to stage) are reasons too, saying so. What is left is a :class:`Wanted`: the executable,
the compute range, and the schedule.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from starling.vo.execbroker.normalize import EB_PREFIX

STARLING_COMPONENT = EB_PREFIX + "executable/starling-component-1.0"
DOCKER_CONTAINER = EB_PREFIX + "executable/docker-container-1.0"
SIMPLE_COMPUTE = EB_PREFIX + "compute/simple-compute-resource-1.0"
# Defined by the draft, not run here: each answered NO, "not supported".
UNSUPPORTED_KINDS = {
    EB_PREFIX + "executable/jupyter-notebook-1.0": "Jupyter notebooks",
    EB_PREFIX + "executable/singularity-container-1.0": "Singularity containers",
    EB_PREFIX + "volume/simple-volume-mount-1.0": "volumes",
    EB_PREFIX + "storage/simple-storage-resource-1.0": "storage",
    **{
        EB_PREFIX + f"data/{name}-data-resource-1.0": "data resources to stage"
        for name in ("simple", "ivoa", "skao", "S3", "rucio")
    },
}


class Reason(BaseModel):
    """Why a request gets NO: where, and what."""

    path: str
    text: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Meta(_Strict):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)


class MinMax(_Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class Compute(_Strict):
    kind: str
    meta: Meta | None = None
    cores: MinMax | None = None
    memory: MinMax | None = Field(None, description="GiB")
    volumes: list[str] = Field(default_factory=list)


class Requested(_Strict):
    duration: str | None = None
    start: list[str] = Field(default_factory=list, description="ISO 8601 intervals")


class Schedule(_Strict):
    requested: Requested | None = None


class StarlingComponent(_Strict):
    """Starling's own kind: an installed component run as a stage of its own beside the chain."""

    kind: str
    meta: Meta | None = None
    component: str = Field(min_length=1, description="an installed component's name (its 'use')")
    config: dict[str, Any] = Field(default_factory=dict)
    beside: str | None = Field(
        None, description="the stage of the chain it reads (default: the filter stage)"
    )


class DockerImage(_Strict):
    locations: list[str] = Field(min_length=1)
    digest: str | None = None
    platform: dict[str, str] | None = None


class DockerContainer(_Strict):
    kind: str
    meta: Meta | None = None
    image: DockerImage
    privileged: bool = False
    entrypoint: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    network: dict[str, Any] | None = None


class Volume(_Strict):
    kind: str
    meta: Meta | None = None
    path: str
    mode: str | None = None
    cardinality: str | None = None
    resources: list[str] = Field(default_factory=list)


class Storage(_Strict):
    kind: str
    meta: Meta | None = None
    size: MinMax | None = None
    data: list[str] = Field(default_factory=list)


class Request(_Strict):
    """The top level, each block read on its own (so that every wrong block is named)."""

    meta: Meta | None = None
    executable: dict[str, Any] | None = None
    schedule: Schedule | None = None
    compute: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    storage: list[dict[str, Any]] = Field(default_factory=list)
    data: list[dict[str, Any]] = Field(default_factory=list)


@dataclass
class Wanted:
    """What a valid request asks for."""

    name: str
    executable: StarlingComponent | DockerContainer
    cores: tuple[int, int]
    memory_gib: tuple[int, int]
    duration: dt.timedelta
    starts: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)


_M = TypeVar("_M", bound=BaseModel)

DEFAULT_CORES = (1, 1)
DEFAULT_MEMORY_GIB = (1, 1)
DEFAULT_DURATION = dt.timedelta(hours=1)
# How long a session may last, and how far ahead it may start: no one books the broker for years.
MAX_DURATION = dt.timedelta(days=7)
MAX_HORIZON = dt.timedelta(days=30)


def read_request(document: Any, now: dt.datetime) -> tuple[Wanted | None, list[Reason]]:
    """The request's :class:`Wanted`, or None and every reason it cannot be offered."""
    reasons: list[Reason] = []
    request = _validated(Request, document, "", reasons)
    if request is None:
        return None, reasons
    executable = _executable(request.executable, reasons)
    compute = (
        _validated(Compute, request.compute, "compute", reasons) if request.compute is not None else None
    )
    if compute is not None and compute.kind != SIMPLE_COMPUTE:
        reasons.append(Reason(path="compute.kind", text=f"unknown compute kind {compute.kind!r}"))
    for block, shape in (("volumes", Volume), ("storage", Storage), ("data", None)):
        for index, item in enumerate(getattr(request, block)):
            if shape is not None:
                _validated(shape, item, f"{block}[{index}]", reasons)  # each unknown field named
            reasons.extend(_unsupported(item, f"{block}[{index}]"))
    cores = _range(compute.cores if compute else None, DEFAULT_CORES, "compute.cores", reasons)
    memory = _range(compute.memory if compute else None, DEFAULT_MEMORY_GIB, "compute.memory", reasons)
    requested = request.schedule.requested if request.schedule else None
    duration = _duration(requested.duration if requested else None, reasons)
    starts = [
        _interval(text, f"schedule.requested.start[{i}]", reasons)
        for i, text in enumerate(requested.start if requested else [])
    ]
    for index, (begin, end) in enumerate(s for s in starts if s is not None):
        where = f"schedule.requested.start[{index}]"
        if end <= now:
            reasons.append(Reason(path=where, text="the interval is in the past"))
        elif begin > now + MAX_HORIZON:
            reasons.append(Reason(path=where, text=f"at most {MAX_HORIZON.days} days ahead"))
    if reasons or executable is None:
        return None, reasons
    name = request.meta.name if request.meta and request.meta.name else "no-name"
    return Wanted(name, executable, cores, memory, duration, [s for s in starts if s is not None]), reasons


def _executable(
    block: dict[str, Any] | None, reasons: list[Reason]
) -> StarlingComponent | DockerContainer | None:
    if block is None:
        reasons.append(Reason(path="executable", text="no executable: say what to run"))
        return None
    kind = block.get("kind")
    if kind == STARLING_COMPONENT:
        return _validated(StarlingComponent, block, "executable", reasons)
    if kind == DOCKER_CONTAINER:
        return _validated(DockerContainer, block, "executable", reasons)
    reasons.extend(_unsupported(block, "executable"))
    return None


def _unsupported(item: dict[str, Any], path: str) -> list[Reason]:
    kind = item.get("kind")
    if not isinstance(kind, str):
        return [Reason(path=f"{path}.kind", text="a kind is a URI (a string)")]
    if kind in UNSUPPORTED_KINDS:
        return [Reason(path=f"{path}.kind", text=f"{UNSUPPORTED_KINDS[kind]} are not supported here")]
    return [Reason(path=f"{path}.kind", text=f"unknown kind {kind!r}")]


def _validated(model: type[_M], data: Any, path: str, reasons: list[Reason]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in (path, *error["loc"]) if part != "")
            text = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            reasons.append(Reason(path=where or "(request)", text=text))
        return None


def _range(
    asked: MinMax | None, default: tuple[int, int], path: str, reasons: list[Reason]
) -> tuple[int, int]:
    low = asked.min if asked and asked.min is not None else None
    high = asked.max if asked and asked.max is not None else None
    low = low if low is not None else (min(default[0], high) if high is not None else default[0])
    high = high if high is not None else max(low, default[1])
    if low > high:
        reasons.append(Reason(path=path, text=f"min {low} is above max {high}"))
    if high == 0:
        reasons.append(Reason(path=f"{path}.max", text="asks for none"))
    return low, high


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> dt.timedelta | None:
    """An ISO 8601 duration of days, hours, minutes and seconds (None if it is not one)."""
    found = _DURATION.match(text)
    if found is None or text in ("P", "PT") or text.endswith("T"):
        return None
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    try:
        return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return None


def _duration(text: str | None, reasons: list[Reason]) -> dt.timedelta:
    if text is None:
        return DEFAULT_DURATION
    duration = parse_duration(text)
    if duration is None or duration <= dt.timedelta(0):
        reasons.append(
            Reason(path="schedule.requested.duration", text=f"{text!r} is not an ISO 8601 duration above 0")
        )
        return DEFAULT_DURATION
    if duration > MAX_DURATION:
        reasons.append(Reason(path="schedule.requested.duration", text=f"at most {MAX_DURATION.days} days"))
        return DEFAULT_DURATION
    return duration


def parse_instant(text: str) -> dt.datetime | None:
    try:
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)


def _interval(text: str, path: str, reasons: list[Reason]) -> tuple[dt.datetime, dt.datetime] | None:
    """``start/end`` or ``start/duration`` (ISO 8601)."""
    begin_text, _, end_text = text.partition("/")
    begin = parse_instant(begin_text)
    end = parse_instant(end_text) if end_text and not end_text.startswith("P") else None
    if begin is not None and end is None and end_text.startswith("P"):
        length = parse_duration(end_text)
        try:
            end = begin + length if length is not None and length <= MAX_HORIZON else None
        except OverflowError:  # past the year 9999
            end = None
    if begin is None or end is None or end < begin:
        reasons.append(
            Reason(path=path, text=f"{text!r} is not an ISO 8601 interval (start/end or start/duration)")
        )
        return None
    return begin, end
