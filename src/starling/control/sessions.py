"""Users' own processing, brought through the ExecutionBroker protocol, run as stages beside the chain.

The controller's broker (``starling.vo.execbroker.broker``) makes offers from this machine's capacity:
its cores and memory (cgroup limits respected) less a share kept for the chain (``CHAIN_SHARE``). A
request's Starling component is checked when the offer is made: installed, of a kind a stage runs, its
config valid (a NO naming the field), beside a stage of the chain. A container image runs only where
the backend runs containers (Kubernetes) and the pipeline gives it a Kafka principal of its own; it is a NO
on the local backend, which has no container engine.

An accepted session is driven by :class:`SessionRunner` at its scheduled times: WAITING, then PREPARING
and AVAILABLE before its start; at its start its stage (``s-<uuid>``) is added beside the chain (it reads
what the stage it names writes from then on), RUNNING; at its end the stage is removed, RELEASING then
COMPLETED. A stage that cannot be added or removed makes the session FAILED, with the reason in its
messages. A cancelled session's stage is removed at once. Each session's stage reaches Kafka as a
principal of its own when the pipeline gives users Kafka access (``starling.control.session_kafka``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from starling.control.loop import PeriodicLoop
from starling.core.registry import component_class
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources
from starling.core.stages import USERS_ANNOTATORS, chain_names, filtering_stage
from starling.deploy.sessions import RESERVED_PREFIXES, VARIABLE_NAME, ContainerRun
from starling.errors import StarlingError
from starling.vo.execbroker.broker import Broker
from starling.vo.execbroker.ledger import Capacity, Ledger
from starling.vo.execbroker.model import (
    DOCKER_CONTAINER,
    DockerContainer,
    Reason,
    StarlingComponent,
    Wanted,
)
from starling.vo.execbroker.sessions import LIVE, PREPARATION, Session, message

log = logging.getLogger("starling.sessions")

# Sessions over whose stage may still run (a removal failed, or a controller restarted): removed until gone.
_CLEARED = ("RELEASING", "CANCELLED", "FAILED")

# Kept for the chain's own stages: what users' sessions may never take.
CHAIN_SHARE = Capacity(cores=1, memory_gib=2)
_GIB = 1024**3
# The one sink a session may run: files of its own, in ``sessions/<its stage>/``.
SESSION_SINK = "files"


class Host(Protocol):
    """What sessions need of the controller (``starling.control.session_host``)."""

    @property
    def pipeline(self) -> PipelineSpec: ...

    @property
    def runs_containers(self) -> bool: ...

    @property
    def gives_identities(self) -> bool: ...

    def quota_capacity(self) -> Capacity | None: ...

    def validate_components(self, components: list[ComponentSpec]) -> None: ...

    def add_session_stage(
        self, name: str, owner: str, beside: str, components: list[ComponentSpec], resources: StageResources
    ) -> None: ...

    def add_session_container(self, run: ContainerRun, owner: str, beside: str) -> None: ...

    def remove_session(self, name: str, owner: str) -> None: ...

    def has_session(self, name: str, owner: str) -> bool: ...


def machine_capacity(share: Capacity = CHAIN_SHARE) -> Capacity:
    """This machine's cores and GiB (within the cgroup's limits) less the chain's share."""
    cores = float(len(os.sched_getaffinity(0)))
    quota = _read(Path("/sys/fs/cgroup/cpu.max")).split()
    if len(quota) == 2 and quota[0] != "max":
        cores = min(cores, int(quota[0]) / int(quota[1]))
    memory = psutil.virtual_memory().total
    limit = _read(Path("/sys/fs/cgroup/memory.max"))
    if limit.isdigit():
        memory = min(memory, int(limit))
    return Capacity(max(0, int(cores) - share.cores), max(0, memory // _GIB - share.memory_gib))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def stage_of(session: Session) -> str:
    return f"s-{session.uuid[:8]}"


def session_components(session: Session) -> list[ComponentSpec]:
    """The session's component, its files (if it writes any) in a folder of its own."""
    executable = session.executable
    config = dict(executable.get("config", {}))
    if executable["component"] == SESSION_SINK:
        config["directory"] = str(Path("sessions") / stage_of(session) / config.get("directory", "matches"))
    return [
        ComponentSpec(
            use=executable["component"], name=f"{stage_of(session)}-{executable['component']}", config=config
        )
    ]


class Keeper(Protocol):
    """Where the broker's state is kept (``ControllerState``)."""

    def save_named(self, name: str, body: str) -> None: ...

    def load_named(self, name: str) -> str | None: ...


def make_broker(host: Host, capacity: Capacity | None = None, state: Keeper | None = None) -> Broker:
    """The controller's broker; with ``state``, its sessions and what they hold are kept there (and taken
    up again when the controller restarts)."""
    broker = _broker(host, capacity)
    if state is not None:
        kept = state.load_named("execbroker")
        if kept:
            broker.restore(json.loads(kept))
        broker.on_change = lambda snapshot: state.save_named("execbroker", json.dumps(snapshot))
    return broker


def _broker(host: Host, capacity: Capacity | None) -> Broker:
    def check(wanted: Wanted) -> list[Reason]:
        executable = wanted.executable
        if isinstance(executable, DockerContainer):
            return _container_reasons(host, executable)
        return _component_reasons(host, executable)

    capacity = capacity or host.quota_capacity() or machine_capacity()
    return Broker(Ledger(capacity), lambda: dt.datetime.now(dt.UTC), check)


def _component_reasons(host: Host, executable: StarlingComponent) -> list[Reason]:
    try:
        kind = component_class(executable.component).kind
    except StarlingError as exc:
        return [Reason(path="executable.component", text=str(exc))]
    refused = _refused(executable, kind)
    if refused:
        return [Reason(path="executable.component", text=refused)]
    directory = str(executable.config.get("directory", ""))
    if executable.component == SESSION_SINK and (
        Path(directory).is_absolute() or ".." in Path(directory).parts
    ):
        return [
            Reason(
                path="executable.config.directory", text="a folder of the session's own: relative, no '..'"
            )
        ]
    chain = chain_names(host.pipeline)
    beside = executable.beside or filtering_stage(host.pipeline)
    if beside not in chain[:-1]:
        return [
            Reason(
                path="executable.beside",
                text=f"{beside!r} is no stage of the chain that writes a topic ({', '.join(chain[:-1])})",
            )
        ]
    component = ComponentSpec(use=executable.component, name="checked", config=executable.config)
    try:
        host.validate_components([component])
    except StarlingError as exc:
        problems = getattr(exc, "problems", None) or [{"loc": [], "msg": str(exc)}]
        return [
            Reason(
                path=".".join(["executable.config", *(str(p) for p in problem.get("loc", [])[1:])]),
                text=str(problem.get("msg")),
            )
            for problem in problems
        ]
    return []


def _container_reasons(host: Host, executable: DockerContainer) -> list[Reason]:
    """Why a container image cannot run here: no container engine, no principal of its own to give it
    (it would otherwise reach Kafka as the pipeline), privileges, or variables that are Starling's."""
    if not host.runs_containers:
        text = "no container engine here (the local backend): this broker runs Starling components only"
        return [Reason(path="executable.kind", text=text)]
    reasons = []
    if not host.gives_identities:
        text = (
            "a container reaches Kafka as a principal of its own, and this broker gives none ([kafka.users])"
        )
        reasons.append(Reason(path="executable.kind", text=text))
    if executable.privileged:
        reasons.append(Reason(path="executable.privileged", text="privileged containers are not run"))
    for name in sorted(executable.environment):
        if name.startswith(RESERVED_PREFIXES):
            text = f"{name}: variables starting {' or '.join(RESERVED_PREFIXES)} are set by Starling"
            reasons.append(Reason(path=f"executable.environment.{name}", text=text))
        elif not VARIABLE_NAME.match(name):
            text = f"{name!r} is no variable name (letters, digits, '_', '-', '.'; not first a digit)"
            reasons.append(Reason(path=f"executable.environment.{name}", text=text))
    try:
        shlex.split(executable.entrypoint or "")
    except ValueError as exc:
        reasons.append(Reason(path="executable.entrypoint", text=f"cannot be read as a command: {exc}"))
    return reasons


def container_run(session: Session) -> ContainerRun:
    """The session's image, command and environment, within what it was offered (its topics are the
    host's to set)."""
    executable = DockerContainer.model_validate(session.executable)
    image = executable.image.locations[0]
    if executable.image.digest and "@" not in image:
        image = f"{image}@{executable.image.digest}"
    return ContainerRun(
        stage=stage_of(session),
        image=image,
        resources=StageResources(cores=session.cores, memory_gib=session.memory_gib),
        reads="",
        writes="",
        group="",
        command=shlex.split(executable.entrypoint) if executable.entrypoint else None,
        environment=dict(executable.environment),
    )


def _refused(executable: StarlingComponent, kind: str) -> str | None:
    """Why a session may not run this component: a source feeds the chain; a sink other than files
    would write the broker's store or deliver for others; users' lists live in the chain's first stage."""
    if kind == "source":
        return f"{executable.component} is a source: it cannot run in a stage"
    if kind == "sink" and executable.component != SESSION_SINK:
        return (
            f"a session writes only files of its own ({SESSION_SINK}); {executable.component} is the broker's"
        )
    if executable.component in USERS_ANNOTATORS:
        return f"{executable.component} is kept in the chain's first stage: use /{executable.component}"
    return None


class SessionRunner(PeriodicLoop):
    """Moves accepted sessions through their scheduled phases, adding and removing their stages."""

    def __init__(self, host: Host, broker: Broker, interval_s: float = 1.0) -> None:
        super().__init__("sessions", interval_s)
        self.host = host
        self.broker = broker
        # Sessions over of which nothing is left (looked at once after a controller starts).
        self._clean: set[str] = set()

    def step(self) -> None:
        now = self.broker.clock()
        with self.broker.lock:
            due = [s for s in self.broker.sessions.values() if s.phase in (*LIVE, *_CLEARED)]
        for session in due:
            if session.uuid in self._clean:
                continue
            try:  # one session's trouble (its backend's, Kafka's) holds up no other
                self.drive(session, now)
            except Exception:
                log.exception("session %s: could not be driven; trying again", session.uuid)

    def drive(self, session: Session, now: dt.datetime) -> None:
        """One look at ``session``: move it on if its time has come. Each move is made only from the phase
        it was seen in, so a client's cancel meanwhile wins (its stage is then removed)."""
        phase, uuid = session.phase, session.uuid
        if phase == "ACCEPTED":
            self.broker.move(uuid, "WAITING", only_from=(phase,))
        elif phase == "WAITING" and now >= session.start - PREPARATION:
            # A stage needs nothing staged: it is ready at once, and starts at its start.
            if self.broker.move(uuid, "PREPARING", only_from=(phase,)):
                self.broker.move(uuid, "AVAILABLE", only_from=("PREPARING",))
        elif phase == "AVAILABLE" and now >= session.end:
            self._fail(session, "its window passed before it could start (the controller was away)")
        elif phase == "AVAILABLE" and now >= session.start:
            self._act(session, phase, "RUNNING", lambda: self._add(session))
        elif phase == "RUNNING" and now >= session.end:
            if self.broker.move(uuid, "RELEASING", only_from=(phase,)):
                self._release(session)
        elif phase == "RELEASING":  # a controller restarted while it released
            self._release(session)
        elif phase in _CLEARED:
            if not self._has_stage(session):
                self._clean.add(uuid)  # nothing of it is left: not looked at again
                return
            try:  # until its stage is gone: the user's code runs no longer than its session
                self.host.remove_session(stage_of(session), session.owner)
            except Exception:
                log.exception("session %s: its stage could not be removed; trying again", uuid)

    def _release(self, session: Session) -> None:
        if not self._has_stage(session):
            self.broker.move(session.uuid, "COMPLETED", only_from=("RELEASING",))
            return
        self._act(
            session,
            "RELEASING",
            "COMPLETED",
            lambda: self.host.remove_session(stage_of(session), session.owner),
        )

    def _add(self, session: Session) -> None:
        beside = self._beside(session)
        if session.executable.get("kind") == DOCKER_CONTAINER:
            self.host.add_session_container(container_run(session), session.owner, beside)
            return
        resources = StageResources(cores=session.cores, memory_gib=session.memory_gib)
        components = session_components(session)
        self.host.add_session_stage(stage_of(session), session.owner, beside, components, resources)

    def _has_stage(self, session: Session) -> bool:
        return self.host.has_session(stage_of(session), session.owner)

    def _beside(self, session: Session) -> str:
        return str(session.executable.get("beside") or filtering_stage(self.host.pipeline))

    def _act(self, session: Session, seen: str, then: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # the session fails; the broker goes on for everyone else
            log.exception("session %s: %s", session.uuid, exc)
            self._fail(session, f"failed: {exc}")
            return
        self.broker.move(session.uuid, then, only_from=(seen,))

    def _fail(self, session: Session, reason: str) -> None:
        with self.broker.lock:
            session.messages.append(message("phase", reason, self.broker.clock()))
        self.broker.move(session.uuid, "FAILED")
