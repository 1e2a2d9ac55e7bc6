"""Users' own processing, brought through the ExecutionBroker protocol, run as stages beside the chain.

The controller's broker (``starling.vo.execbroker.broker``) makes offers from this machine's capacity:
its cores and memory (cgroup limits respected) less a share kept for the chain (``CHAIN_SHARE``). A
request's Starling component is checked when the offer is made: installed, of a kind a stage runs, its
config valid (a NO naming the field), beside a stage of the chain. A container image is a NO here: the
local backend has no container engine.

An accepted session is driven by :class:`SessionRunner` at its scheduled times: WAITING, then PREPARING
and AVAILABLE before its start; at its start its stage (``s-<uuid>``) is added beside the chain (it reads
what the stage it names writes from then on), RUNNING; at its end the stage is removed, RELEASING then
COMPLETED. A stage that cannot be added or removed makes the session FAILED, with the reason in its
messages. A cancelled session's stage is removed at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from starling.control import reshape
from starling.control.loop import PeriodicLoop
from starling.core.registry import component_class
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources
from starling.core.stages import USERS_ANNOTATORS, chain_names, filtering_stage
from starling.errors import StarlingError
from starling.vo.execbroker.broker import Broker
from starling.vo.execbroker.ledger import Capacity, Ledger
from starling.vo.execbroker.model import DOCKER_CONTAINER, Reason, StarlingComponent, Wanted
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
    """What sessions need of the controller."""

    @property
    def pipeline(self) -> PipelineSpec: ...

    def validate_components(self, components: list[ComponentSpec]) -> None: ...

    def add_session_stage(
        self, name: str, beside: str, components: list[ComponentSpec], resources: StageResources
    ) -> None: ...

    def remove_session_stage(self, name: str) -> None: ...


class ControllerHost:
    """The controller as sessions see it: its pipeline, its checks, and stages added and removed beside
    the chain (``starling.control.reshape``)."""

    def __init__(self, controller: reshape.Controller) -> None:
        self.controller = controller

    @property
    def pipeline(self) -> PipelineSpec:
        return self.controller.desired.spec

    def validate_components(self, components: list[ComponentSpec]) -> None:
        self.controller.validate("session", components, current=[])

    def add_session_stage(
        self, name: str, beside: str, components: list[ComponentSpec], resources: StageResources
    ) -> None:
        reshape.add_branch(self.controller, name, beside, components, resources=resources)

    def remove_session_stage(self, name: str) -> None:
        reshape.remove_stage(self.controller, name)


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
        if executable.kind == DOCKER_CONTAINER:
            return [
                Reason(
                    path="executable.kind",
                    text="no container engine here: this broker runs Starling components only",
                )
            ]
        assert isinstance(executable, StarlingComponent)
        return _component_reasons(host, executable)

    return Broker(Ledger(capacity or machine_capacity()), lambda: dt.datetime.now(dt.UTC), check)


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

    def step(self) -> None:
        now = self.broker.clock()
        with self.broker.lock:
            due = [s for s in self.broker.sessions.values() if s.phase in (*LIVE, *_CLEARED)]
        for session in due:
            self.drive(session, now)

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
            resources = StageResources(cores=session.cores, memory_gib=session.memory_gib)
            self._act(
                session,
                phase,
                "RUNNING",
                lambda: self.host.add_session_stage(
                    stage_of(session), self._beside(session), session_components(session), resources
                ),
            )
        elif phase == "RUNNING" and now >= session.end:
            if self.broker.move(uuid, "RELEASING", only_from=(phase,)):
                self._release(session)
        elif phase == "RELEASING":  # a controller restarted while it released
            self._release(session)
        elif phase in _CLEARED and self._has_stage(session):
            try:  # until its stage is gone: the user's code runs no longer than its session
                self.host.remove_session_stage(stage_of(session))
            except Exception:
                log.exception("session %s: its stage could not be removed; trying again", uuid)

    def _release(self, session: Session) -> None:
        if not self._has_stage(session):
            self.broker.move(session.uuid, "COMPLETED", only_from=("RELEASING",))
            return
        self._act(
            session, "RELEASING", "COMPLETED", lambda: self.host.remove_session_stage(stage_of(session))
        )

    def _has_stage(self, session: Session) -> bool:
        return stage_of(session) in [s.name for s in self.host.pipeline.stages]

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
