"""The stages' reconcilers and the controller's lock, in-process, with replicas that answer as a worker's
control API does (applied and pending pipeline versions): a change is told live exactly when every
running replica has applied it; a burst sends only the latest list; a failed push is tried again; an
operator's change made while users change the same stage drops none of theirs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from starling.assembly import default_pipeline, input_source
from starling.control import rollout as rollout_module
from starling.control.backends.kubernetes import KubernetesBackend
from starling.control.client import PIPELINE_VERSION_HEADER, WorkerClient
from starling.control.controller import Controller
from starling.control.rollout import StageRollout
from starling.control.state import ControllerState, DesiredPipeline
from starling.core.spec import VERSION_KEY, ComponentSpec, PipelineSpec, file_version, versioned_json
from starling.deploy.kubernetes import PIPELINE_MAX_BYTES
from starling.errors import ConfigError
from tests.support.helpers import wait_until


class FakeReplica(WorkerClient):
    """A replica's control API: ``PUT /components`` makes a list pending, which is applied
    ``apply_after_s`` later (at its "next batch boundary"); ``refusals`` pushes fail first."""

    def __init__(self, replica: int, applied: int | None = None, apply_after_s: float = 0.05) -> None:
        self.stage, self.replica, self.token = "filter", replica, "t"
        self.applied, self.pending, self.proposed_at = applied, None, 0.0
        self.apply_after_s = apply_after_s
        self.refusals = 0
        self.pushes: list[int] = []
        self.running = True

    @property
    def base_url(self) -> str | None:
        return f"http://replica-{self.replica}"

    @property
    def alive(self) -> bool:
        return self.running

    def request(
        self, method: str, path: str, body: Any, timeout_s: float, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        if (method, path) == ("PUT", "/components"):
            if self.refusals:
                self.refusals -= 1
                return None
            self.pending = int((headers or {})[PIPELINE_VERSION_HEADER])
            self.proposed_at = time.monotonic()
            self.pushes.append(self.pending)
            return {"version": len(self.pushes) + 1, "applied": False}
        if self.pending is not None and time.monotonic() - self.proposed_at >= self.apply_after_s:
            self.applied, self.pending = self.pending, None
        return {"applied_pipeline_version": self.applied, "pending_pipeline_version": self.pending}


class FakeBackend:
    """Lists the replicas; ``gate`` cleared holds back the reconciler at its next look."""

    max_pipeline_bytes: int | None = None

    def __init__(self, replicas: Sequence[FakeReplica] = ()) -> None:
        self.replicas = list(replicas)
        self.gate = threading.Event()
        self.gate.set()
        self.written: list[int | None] = []

    def start(self, spec: PipelineSpec, replicas: dict[str, int], version: int | None = None) -> None:
        pass

    def write_spec(self, spec: PipelineSpec, version: int | None = None) -> None:
        time.sleep(0.005)  # a real write takes a while: changes made meanwhile wait for the lock
        self.written.append(version)

    def workers(self, stage: str) -> Sequence[WorkerClient]:
        self.gate.wait()
        return list(self.replicas) if stage == "filter" else []

    def scale(self, replicas: dict[str, int]) -> None:
        pass

    def restarts(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        pass

    def quota_capacity(self) -> None:
        return None  # users' sessions are offered the machine's own capacity


def _rollout(backend: FakeBackend, wanted: int = 1) -> StageRollout:
    rollout = StageRollout("filter", backend, lambda: wanted)
    rollout.publish(1, [])
    return rollout


@pytest.fixture
def started() -> Iterator[list[StageRollout]]:
    running: list[StageRollout] = []
    yield running
    for rollout in running:
        rollout.stop()


def _start(started: list[StageRollout], rollout: StageRollout) -> StageRollout:
    rollout.start()
    started.append(rollout)
    return rollout


def test_a_change_is_live_when_applied_though_a_newer_one_is_pending(started: list[StageRollout]) -> None:
    fast, stuck = FakeReplica(0, applied=1), FakeReplica(1, applied=1)
    rollout = _start(started, _rollout(FakeBackend([fast, stuck])))
    rollout.publish(2, [])
    assert rollout.wait_live(2, timeout_s=10)
    stuck.apply_after_s = 3600.0  # from now on it keeps what it is given pending
    rollout.publish(3, [])
    assert not rollout.wait_live(3, timeout_s=1)
    assert stuck.pending == 3
    assert rollout.wait_live(2, timeout_s=1)  # version 3 pending does not hide version 2, applied
    assert rollout.wait_live(1, timeout_s=1)


def test_a_burst_of_changes_sends_only_the_latest_list(started: list[StageRollout]) -> None:
    replicas = [FakeReplica(0, applied=1), FakeReplica(1, applied=1)]
    backend = FakeBackend(replicas)
    rollout = _start(started, _rollout(backend))
    assert rollout.wait_live(1, timeout_s=10)
    backend.gate.clear()  # the reconciler is held at its next look while 30 changes are made
    time.sleep(0.3)
    for version in range(2, 32):
        rollout.publish(version, [])
    backend.gate.set()
    assert all(rollout.wait_live(version, timeout_s=10) for version in range(2, 32))
    for replica in replicas:
        assert replica.applied == 31
        assert len(replica.pushes) <= 2  # the list it was about to send, then the latest


def test_a_failed_push_is_tried_again_and_a_restarted_replica_brought_back(
    started: list[StageRollout], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollout_module, "IDLE_POLL_S", 0.5)  # to find the restarted replica sooner
    replica = FakeReplica(0, applied=1)
    replica.refusals = 3
    rollout = _start(started, _rollout(FakeBackend([replica])))
    rollout.publish(2, [])
    assert rollout.wait_live(2, timeout_s=10)
    assert replica.refusals == 0
    replica.applied = None  # restarted from a file no controller wrote: given the list again
    wait_until(lambda: replica.pushes == [2, 2] and replica.applied == 2, 15, "the list given again")


def test_a_replica_started_from_the_current_file_needs_no_push(started: list[StageRollout]) -> None:
    replica = FakeReplica(0, applied=5)
    rollout = StageRollout("filter", FakeBackend([replica]), lambda: 1)
    rollout.publish(5, [])
    _start(started, rollout)
    assert rollout.wait_live(5, timeout_s=10)
    assert rollout.wait_live(3, timeout_s=1)
    assert replica.pushes == []


def test_no_running_replica_is_live_only_when_none_is_wanted(started: list[StageRollout]) -> None:
    down = FakeReplica(0, applied=1)
    down.running = False
    wanted = _start(started, _rollout(FakeBackend([down]), wanted=1))
    none_wanted = _start(started, _rollout(FakeBackend([]), wanted=0))
    began = time.monotonic()
    assert not wanted.wait_live(1, timeout_s=10)
    assert none_wanted.wait_live(1, timeout_s=10)
    assert time.monotonic() - began < 8  # told at once, not after the whole wait
    assert down.pushes == []


def test_replicas_wanted_but_not_yet_listed_are_waited_for(started: list[StageRollout]) -> None:
    """The reconciler's first look may come before the backend has started the stage's replicas: a change
    made then is live once they run it, not refused as if they were all down."""
    backend = FakeBackend([])
    rollout = _start(started, _rollout(backend, wanted=1))
    wait_until(lambda: rollout.replicas() == [], 10, "a look that lists no replica")
    backend.replicas.append(FakeReplica(0, applied=1))  # started now, from the current file
    assert rollout.wait_live(1, timeout_s=10)
    # None started at all (a backend that starts nothing): told at once, after one look, not after the wait.
    nothing = _start(started, _rollout(FakeBackend([]), wanted=1))
    wait_until(lambda: nothing.replicas() == [], 10, "a look that lists no replica")
    began = time.monotonic()
    assert not nothing.wait_live(1, timeout_s=10)
    assert time.monotonic() - began < 3


def test_the_pipeline_file_carries_its_version(tmp_path: Path) -> None:
    spec = default_pipeline(input_source([], 1))
    path = tmp_path / "pipeline.json"
    path.write_text(versioned_json(spec, 42))
    assert json.loads(path.read_text())[VERSION_KEY] == 42
    assert file_version(path) == 42
    assert PipelineSpec.from_file(path) == spec
    path.write_text(versioned_json(spec, None))
    assert file_version(path) is None
    assert PipelineSpec.from_file(path) == spec


def _threshold(name: str, max_mag: float = 18.0) -> ComponentSpec:
    return ComponentSpec(use="threshold", name=name, config={"max_mag": max_mag})


def test_an_operator_change_made_while_users_change_the_stage_loses_none(tmp_path: Path) -> None:
    spec = default_pipeline(input_source([], 1))
    state = ControllerState(tmp_path / "starling.db")
    backend = FakeBackend()
    controller = Controller(state, backend, DesiredPipeline(spec=spec))
    try:
        users = [f"user-{index}" for index in range(24)]
        operators = [f"op-{index}" for index in range(8)]

        def user_adds(name: str) -> None:
            controller.edit("filter", lambda current: [*current, _threshold(name)])

        def operator_changes(name: str) -> None:
            controller.add("filter", _threshold(name), position=0)
            controller.patch("filter", "bright", {"max_mag": 17.5})
            controller.reorder("ingest", [c.instance_name for c in controller.components("ingest")])

        with ThreadPoolExecutor(max_workers=16) as pool:
            done = [pool.submit(user_adds, n) for n in users] + [
                pool.submit(operator_changes, n) for n in operators
            ]
            for future in done:
                future.result()
        controller.remove("filter", "confirmed")
        names = [c.instance_name for c in controller.components("filter")]
        assert sorted(names) == sorted(["bright", *users, *operators])
        bright = next(c for c in controller.components("filter") if c.instance_name == "bright")
        assert bright.config["max_mag"] == 17.5
        assert controller.desired.version == 1 + len(users) + 3 * len(operators) + 1
        assert backend.written[-1] == controller.desired.version  # the workers' file carries it
    finally:
        controller.close()
        state.close()


def test_a_change_the_backend_cannot_hold_is_refused_before_it_is_saved(tmp_path: Path) -> None:
    """A Kubernetes Secret holds 1 MiB: a watchlist that would take the pipeline past what the backend
    can give its workers is refused, and neither the desired pipeline nor the workers' file changes."""
    assert KubernetesBackend.max_pipeline_bytes == PIPELINE_MAX_BYTES < 1024 * 1024
    spec = default_pipeline(input_source([], 1))
    state = ControllerState(tmp_path / "starling.db")
    backend = FakeBackend()
    backend.max_pipeline_bytes = len(versioned_json(spec, 1).encode()) + 2_000
    controller = Controller(state, backend, DesiredPipeline(spec=spec))
    try:
        controller.add("filter", _threshold("small"), position=None)  # within the limit
        targets = [{"name": f"t{i}", "ra": i * 0.01, "dec": 1.0} for i in range(200)]
        big = ComponentSpec(
            use="watchlists", name="big", config={"lists": [{"name": "l", "targets": targets}]}
        )
        with pytest.raises(ConfigError, match=r"over the [\d,]+ its workers can be given here"):
            controller.add("ingest", big, position=None)
        assert controller.desired.version == 2
        assert "big" not in [c.instance_name for c in controller.components("ingest")]
        assert backend.written == [2]
        assert ControllerState(tmp_path / "starling.db").load().version == 2  # type: ignore[union-attr]
        # A filter whose outputs add a route to the distribute stage: refused whole, no route left behind.
        hook = {"type": "webhook", "url": "https://hooks.example.org/a", "secret": "s" * 32}
        config = {"expression": "mag < 18", "description": "d" * 1800, "outputs": [hook]}
        routed = ComponentSpec(use="adql", name="ada.routed", config=config)
        sinks = controller.desired.spec.sinks
        with pytest.raises(ConfigError, match="its workers can be given here"):
            controller.edit("filter", lambda current: [*current, routed])
        assert (controller.desired.version, controller.desired.spec.sinks) == (2, sinks)
    finally:
        controller.close()
        state.close()
