"""Accepted sessions driven through their phases at their times: a stage beside the chain added at the
start and removed at the end, FAILED with the reason when that cannot be done."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from starling.control.session_kafka import SessionTopics, session_acls
from starling.control.sessions import SessionRunner, machine_capacity, make_broker, stage_of
from starling.control.state import ControllerState
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources, StageSpec
from starling.deploy.sessions import ContainerRun
from starling.vo.execbroker.ledger import Capacity
from starling.vo.execbroker.model import DOCKER_CONTAINER, STARLING_COMPONENT
from tests.support.kafka import chain_spec

ACCEPT = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}


class _Host:
    """Records the stages sessions add and remove (a stand-in for the controller in this unit test)."""

    def __init__(self, fail_on: str | None = None, containers: bool = False) -> None:
        self.pipeline: PipelineSpec = chain_spec("127.0.0.1:1", "sessions", 10)
        self.calls: list[tuple[str, ...]] = []
        self.fail_on = fail_on
        self.runs_containers = containers
        self.gives_identities = containers

    def validate_components(self, components: list[ComponentSpec]) -> None:
        return None

    def quota_capacity(self) -> Capacity | None:
        return None

    def add_session_stage(
        self, name: str, owner: str, beside: str, components: list[ComponentSpec], resources: StageResources
    ) -> None:
        if self.fail_on == "add":
            raise RuntimeError("Kafka does not answer")
        self.calls.append(
            ("add", name, beside, components[0].use, f"{resources.cores}/{resources.memory_gib:g}")
        )
        stage = StageSpec(name=name, beside=beside)
        self.pipeline = self.pipeline.model_copy(update={"stages": [*self.pipeline.stages, stage]})

    def add_session_container(self, run: ContainerRun, owner: str, beside: str) -> None:
        self.calls.append(("container", run.stage, beside, run.image, " ".join(run.command or [])))
        self.containers = [run.stage]

    def remove_session(self, name: str, owner: str) -> None:
        self.calls.append(("remove", name))
        stages = [s for s in self.pipeline.stages if s.name != name]
        self.pipeline = self.pipeline.model_copy(update={"stages": stages})
        self.containers = []

    def has_session(self, name: str, owner: str) -> bool:
        return name in [s.name for s in self.pipeline.stages] or name in getattr(self, "containers", [])


def _accepted(host: _Host, now: dt.datetime) -> tuple[SessionRunner, Any]:
    broker = make_broker(host, Capacity(2, 4))
    broker.clock = lambda: now
    request = {
        "executable": {"kind": STARLING_COMPONENT, "component": "lc-features"},
        "schedule": {"requested": {"duration": "PT10M"}},
    }
    offerset = broker.ask(request, "ada")
    session = broker.update(offerset.sessions[0], ACCEPT, "ada")
    return SessionRunner(host, broker), session


def test_a_session_runs_as_a_stage_beside_the_chain_from_its_start_to_its_end() -> None:
    host, now = _Host(), dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    runner, session = _accepted(host, now)
    seen = []
    for moment in (now, now, session.start - dt.timedelta(seconds=30), session.start, session.end):
        runner.drive(session, moment)
        seen.append(session.phase)
    assert seen == ["WAITING", "WAITING", "AVAILABLE", "RUNNING", "COMPLETED"]
    stage = stage_of(session)
    assert host.calls == [("add", stage, "filter", "lc-features", "1/1"), ("remove", stage)]
    assert runner.broker.ledger.free(session.start, session.end, now) == (2, 4)  # its hold let go


def test_a_session_whose_stage_cannot_be_added_fails_saying_why() -> None:
    host, now = _Host(fail_on="add"), dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    runner, session = _accepted(host, now)
    for moment in (now, session.start - dt.timedelta(seconds=30), session.start):
        runner.drive(session, moment)
    assert session.phase == "FAILED"
    assert "Kafka does not answer" in session.messages[-1]["message"]
    assert session.options() == []


def test_the_machine_offers_what_it_has_less_the_chain_share() -> None:
    capacity = machine_capacity()
    assert capacity.cores >= 0
    assert capacity.memory_gib > 0


def test_sessions_and_what_they_hold_are_kept_with_the_controllers_state(tmp_path: Path) -> None:
    state = ControllerState(tmp_path / "controller.db")
    host, now = _Host(), dt.datetime.now(dt.UTC)
    broker = make_broker(host, Capacity(1, 4), state)
    offerset = broker.ask({"executable": {"kind": STARLING_COMPONENT, "component": "lc-features"}}, "ada")
    chosen = broker.update(offerset.sessions[0], ACCEPT, "ada")
    # The controller restarts: the same sessions, and the accepted one still holds its core.
    again = make_broker(host, Capacity(1, 4), ControllerState(tmp_path / "controller.db"))
    restored = again.session(chosen.uuid, "ada")
    assert (restored.phase, restored.start, restored.cores) == ("ACCEPTED", chosen.start, 1)
    assert [again.session(s, "ada").phase for s in offerset.sessions[1:]] == ["REJECTED"] * 3
    assert again.ledger.free(chosen.start, chosen.end, now) == (0, 3)


def test_a_cancel_while_its_stage_starts_wins_and_the_stage_is_removed() -> None:
    host, now = _Host(), dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    runner, session = _accepted(host, now)
    cancel = {"kind": "uri:enum-value-update", "path": "phase", "value": "CANCELLED"}
    runner.drive(session, now)
    runner.drive(session, session.start - dt.timedelta(seconds=30))

    def add_then_cancelled(*args: Any) -> None:  # the user cancels while the stage is being added
        host.calls.append(("add", args[0]))
        host.pipeline = host.pipeline.model_copy(
            update={"stages": [*host.pipeline.stages, StageSpec(name=args[0], beside="filter")]}
        )
        runner.broker.update(session.uuid, cancel, "ada")

    host.add_session_stage = add_then_cancelled  # type: ignore[method-assign]
    runner.drive(session, session.start)
    assert session.phase == "CANCELLED"  # not RUNNING: the cancel is not undone
    runner.drive(session, session.start + dt.timedelta(seconds=1))
    assert host.calls[-1] == ("remove", stage_of(session))


def test_a_session_whose_window_passed_while_the_controller_was_away_fails() -> None:
    host, now = _Host(), dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    runner, session = _accepted(host, now)
    runner.drive(session, now)
    runner.drive(session, session.start - dt.timedelta(seconds=30))
    runner.drive(session, session.end + dt.timedelta(minutes=1))
    assert session.phase == "FAILED"
    assert "window passed" in session.messages[-1]["message"]
    assert host.calls == []


CONTAINER = {
    "kind": DOCKER_CONTAINER,
    "image": {"locations": ["ghcr.io/ada/classifier:2.1"], "digest": "sha256:" + "ab" * 32},
    "entrypoint": "python -m classify --fast",
    "environment": {"MODEL": "rf-v3"},
}


def test_a_container_is_a_no_without_a_container_engine_or_a_principal_of_its_own() -> None:
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    local = make_broker(_Host(), Capacity(2, 4))
    answer = local.ask({"executable": CONTAINER}, "ada")
    assert answer.result == "NO"
    assert any("no container engine" in m["message"] for m in answer.messages)

    cluster = make_broker(_Host(containers=True), Capacity(2, 4))
    cluster.clock = lambda: now
    wrong = {**CONTAINER, "privileged": True, "environment": {"KAFKA_SASL_USERNAME": "admin", "OK": "1"}}
    refused = cluster.ask({"executable": wrong}, "ada")
    assert refused.result == "NO"
    paths = sorted(m["values"]["path"] for m in refused.messages)
    assert paths == ["executable.environment.KAFKA_SASL_USERNAME", "executable.privileged"]
    no_identities = _Host(containers=True)
    no_identities.gives_identities = False
    answer = make_broker(no_identities, Capacity(2, 4)).ask({"executable": CONTAINER}, "ada")
    assert answer.result == "NO"
    assert any("principal of its own" in m["message"] for m in answer.messages)


def test_a_container_session_runs_its_image_and_is_removed_at_its_end() -> None:
    host, now = _Host(containers=True), dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    broker = make_broker(host, Capacity(2, 4))
    broker.clock = lambda: now
    offerset = broker.ask({"executable": CONTAINER, "schedule": {"requested": {"duration": "PT10M"}}}, "ada")
    assert offerset.result == "YES", offerset.messages
    session = broker.update(offerset.sessions[0], ACCEPT, "ada")
    runner = SessionRunner(host, broker)
    for moment in (now, session.start - dt.timedelta(seconds=30), session.start):
        runner.drive(session, moment)
    assert session.phase == "RUNNING"
    image = "ghcr.io/ada/classifier:2.1@sha256:" + "ab" * 32
    stage = stage_of(session)
    assert host.calls == [("container", stage, "filter", image, "python -m classify --fast")]
    runner.drive(session, session.end)
    assert session.phase == "COMPLETED"
    assert host.calls[-1] == ("remove", stage)


def test_a_sessions_principal_may_do_just_what_its_stage_does() -> None:
    component = SessionTopics(reads="p.filtered", group="p.s-1", dead_letters="p.dead-letters")
    container = SessionTopics(reads="p.filtered", group="p.s-2", writes="p.user.ada.s-2")

    def allowed(topics: SessionTopics) -> set[tuple[str, str, str, str]]:
        return {
            (b.restype.name, b.name, b.operation.name, b.resource_pattern_type.name)
            for b in session_acls("starling-u-ada.s-1", topics)
        }

    assert allowed(component) == {
        ("TOPIC", "p.filtered", "READ", "LITERAL"),
        ("TOPIC", "p.filtered", "DESCRIBE", "LITERAL"),
        ("GROUP", "p.s-1", "READ", "LITERAL"),
        ("GROUP", "p.s-1", "DESCRIBE", "LITERAL"),
        ("TOPIC", "p.dead-letters", "WRITE", "LITERAL"),
        ("TOPIC", "p.dead-letters", "DESCRIBE", "LITERAL"),
    }
    # A container writes its own topic only: no dead letters (they would be requeued as the pipeline).
    assert {a for a in allowed(container) if a[2] == "WRITE"} == {
        ("TOPIC", "p.user.ada.s-2", "WRITE", "LITERAL")
    }
    assert all(
        b.principal == "User:starling-u-ada.s-1" for b in session_acls("starling-u-ada.s-1", component)
    )
