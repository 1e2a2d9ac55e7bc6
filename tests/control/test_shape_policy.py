"""The shape policy's decisions, from measured lags and costs (the reshapes themselves: test_reshape.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.shape_policy import ShapePolicy, StageLoad, fuse_wanted, split_wanted
from starling.control.shaper import Shaper
from starling.control.state import DesiredPipeline
from starling.core.spec import ComponentSpec, PipelineSpec, StageSpec

POLICY = ShapePolicy(
    behind_lag=1000, split_after_s=10, min_share=0.4, low_lag=50, fuse_after_s=20, cooldown_s=5
)
COSTS = {"decode": 0.0001, "lc-features": 0.00005, "history-summary": 0.0004}
MOVABLE = ("lc-features", "history-summary")  # in the order the stage runs them


def _load(lag: int = 5000, can_grow: bool = False, costs: dict[str, float] = COSTS) -> StageLoad:
    return StageLoad("ingest", lag, can_grow, costs, MOVABLE)


def test_a_stage_behind_at_its_most_replicas_is_split_by_its_heaviest_component() -> None:
    change = split_wanted(POLICY, _load(), behind_for_s=12)
    assert change is not None
    assert (change.kind, change.stage, change.components) == ("split", "ingest", ("history-summary",))
    assert "lag 5000 over 1000 for 12 s" in change.reason
    assert "history-summary take 73% of its CPU (history-summary: 0.400 ms per alert)" in change.reason


def test_a_split_moves_the_heaviest_with_those_after_it_and_never_the_first() -> None:
    costs = {"decode": 0.0001, "a": 0.001, "b": 0.0008, "c": 0.0001}
    change = split_wanted(POLICY, StageLoad("ingest", 5000, False, costs, ("a", "b", "c")), 60)
    assert change is not None
    assert change.components == ("b", "c")  # a is the heaviest, but it runs first: it stays
    assert "b, c take 45%" in change.reason


@pytest.mark.parametrize(
    ("load", "behind_for_s"),
    [
        (_load(lag=900), 60),  # not behind
        (_load(can_grow=True), 60),  # it can still scale out: let the autoscaler do it
        (_load(), 9),  # not for long enough
        (
            _load(costs={"decode": 0.001, "lc-features": 0.0001, "history-summary": 0.0004}),
            60,
        ),  # 27%: no help
        (
            StageLoad("filter", 5000, False, {"bright": 0.001}, ("bright",)),
            60,
        ),  # one component: nothing to move
    ],
)
def test_no_split_that_would_not_help(load: StageLoad, behind_for_s: float) -> None:
    assert split_wanted(POLICY, load, behind_for_s) is None


def test_a_split_is_fused_back_when_the_load_has_been_low_long_enough() -> None:
    assert fuse_wanted(POLICY, "ingest", "ingest-history-summary", (10, 60), 100) is None
    assert fuse_wanted(POLICY, "ingest", "ingest-history-summary", (10, 20), 19) is None
    change = fuse_wanted(POLICY, "ingest", "ingest-history-summary", (10, 20), 21)
    assert change is not None
    assert change.reason == "lags 10 and 20 under 50 for 21 s: ingest-history-summary back into ingest"


@dataclass
class _Worker:
    status: dict[str, Any]

    def get(self, path: str, timeout_s: float = 5.0) -> dict[str, Any]:
        return self.status


@dataclass
class _Backend:
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)

    def workers(self, stage: str) -> list[_Worker]:
        return [_Worker(self.statuses.get(stage, {}))]


class _Controller:
    """A unit-test double: a pipeline, lags set by the test, and the reshapes recorded (and made)."""

    def __init__(self) -> None:
        spec = PipelineSpec(
            source=ComponentSpec(use="synthetic"),
            stages=[
                StageSpec(
                    name="ingest",
                    annotators=[ComponentSpec(use="lc-features"), ComponentSpec(use="history-summary")],
                ),
                StageSpec(name="distribute", sinks=[ComponentSpec(use="store")]),
            ],
        )
        policy = AutoscalePolicy(min_replicas=1, max_replicas=1)
        self.desired = DesiredPipeline(spec=spec, autoscaling={"ingest": policy}, shape=POLICY)
        components = {name: {"cpu_s": cost * 1000, "in": 1000} for name, cost in COSTS.items()}
        self.backend = _Backend({"ingest": {"components": components}})
        self.lags: dict[str, int] = {}
        self.done: list[tuple[str, ...]] = []
        self.fail = False

    def stage_lag(self, stage: str) -> int:
        return self.lags.get(stage, 0)

    def split_stage(
        self, name: str, new_name: str, moved: list[str], replicas: int = 1, by_shaper: bool = False
    ) -> None:
        if self.fail:
            raise TimeoutError("the replicas of ingest did not stop")
        stages = self.desired.spec.stages
        index = [s.name for s in stages].index(name)
        kept = stages[index].model_copy(
            update={"annotators": [c for c in stages[index].annotators if c.use not in moved]}
        )
        split = StageSpec(name=new_name, annotators=[c for c in stages[index].annotators if c.use in moved])
        self._set([*stages[:index], kept, split, *stages[index + 1 :]], {new_name: name} if by_shaper else {})
        self.done.append(("split", name, new_name, *moved))

    def fuse_stages(self, name: str, following: str) -> None:
        stages = self.desired.spec.stages
        index = [s.name for s in stages].index(name)
        fused = stages[index].model_copy(
            update={"annotators": [*stages[index].annotators, *stages[index + 1].annotators]}
        )
        self._set([*stages[:index], fused, *stages[index + 2 :]])
        self.done.append(("fuse", name))

    def set_autoscaling(self, stage: str, policy: AutoscalePolicy | None) -> None:
        assert policy is not None
        self.desired = self.desired.model_copy(
            update={"autoscaling": {**self.desired.autoscaling, stage: policy}}
        )
        self.done.append(("autoscale", stage))

    def _set(self, stages: list[StageSpec], split: dict[str, str] | None = None) -> None:
        spec = self.desired.spec.model_copy(update={"stages": stages})
        self.desired = DesiredPipeline(
            spec=spec,
            autoscaling=self.desired.autoscaling,
            shape=self.desired.shape,
            split_from={**self.desired.split_from, **(split or {})},
        )


def test_the_shaper_splits_under_a_burst_and_fuses_back_after_it() -> None:
    controller = _Controller()
    shaper = Shaper(controller)
    controller.lags = {"ingest": 8000}
    assert shaper.step(now=100.0) is None  # behind from now on
    assert shaper.step(now=109.0) is None
    decision = shaper.step(now=110.0)
    assert decision is not None
    assert decision.done
    assert (decision.kind, decision.new_stage) == ("split", "ingest-history-summary")
    assert controller.done == [
        ("split", "ingest", "ingest-history-summary", "history-summary"),
        ("autoscale", "ingest-history-summary"),  # it scales on its own, as its stage did
    ]
    assert controller.desired.split_from == {"ingest-history-summary": "ingest"}  # kept with the pipeline

    controller.lags = {"ingest": 10, "ingest-history-summary": 5}  # the burst is over
    assert shaper.step(now=111.0) is None  # low from now on
    assert shaper.step(now=130.0) is None
    decision = shaper.step(now=131.5)
    assert decision is not None
    assert decision.kind == "fuse"
    assert decision.reason.endswith("ingest-history-summary back into ingest")
    assert [s.name for s in controller.desired.spec.stages] == ["ingest", "distribute"]
    assert controller.desired.split_from == {}
    report = shaper.report()
    assert [d["kind"] for d in report["decisions"]] == ["split", "fuse"]
    assert report["policy"]["fuse_after_s"] == 20


def test_a_failed_reshape_is_kept_with_its_error_and_decisions_keep_their_distance() -> None:
    controller = _Controller()
    controller.fail = True
    shaper = Shaper(controller)
    controller.lags = {"ingest": 8000}
    shaper.step(now=0.0)
    decision = shaper.step(now=10.0)
    assert decision is not None
    assert not decision.done
    assert decision.error == "the replicas of ingest did not stop"
    assert controller.desired.split_from == {}
    assert shaper.step(now=12.0) is None  # within the cooldown
    controller.fail = False
    assert shaper.step(now=15.0) is None  # the clock of "behind" started again at the last decision
    assert shaper.step(now=25.0) is not None


def test_without_a_policy_the_shape_stays() -> None:
    controller = _Controller()
    controller.desired = controller.desired.model_copy(update={"shape": None})
    controller.lags = {"ingest": 8000}
    shaper = Shaper(controller)
    assert shaper.step(now=0.0) is None
    assert shaper.step(now=1000.0) is None
    assert controller.done == []


def test_two_splits_of_one_stage_are_fused_back_one_at_a_time() -> None:
    """A stage split twice (its last annotator, then the one before it) has two stages after it; each
    fuse takes in the one right after it, never the other."""
    controller = _Controller()
    annotators = [
        ComponentSpec(use="solar-system"),
        ComponentSpec(use="lc-features"),
        ComponentSpec(use="history-summary"),
    ]
    controller._set(
        [
            controller.desired.spec.stages[0].model_copy(update={"annotators": annotators}),
            controller.desired.spec.stages[1],
        ]
    )
    costs = {"decode": 0.0001, "solar-system": 0.00001, "lc-features": 0.0003, "history-summary": 0.0004}
    controller.backend.statuses["ingest"] = {
        "components": {n: {"cpu_s": c * 1000, "in": 1000} for n, c in costs.items()}
    }
    shaper = Shaper(controller)
    controller.lags = {"ingest": 8000}
    shaper.step(now=0.0)
    assert shaper.step(now=10.0) is not None  # history-summary out
    del costs["history-summary"]  # what the stage's replicas count from then on
    controller.backend.statuses["ingest"] = {
        "components": {n: {"cpu_s": c * 1000, "in": 1000} for n, c in costs.items()}
    }
    shaper.step(now=20.0)
    assert shaper.step(now=30.0) is not None  # then lc-features
    assert [s.name for s in controller.desired.spec.stages] == [
        "ingest",
        "ingest-lc-features",
        "ingest-history-summary",
        "distribute",
    ]
    controller.lags = {}
    shaper.step(now=40.0)
    first = shaper.step(now=61.0)
    assert first is not None
    assert (first.kind, first.new_stage, first.done) == ("fuse", "ingest-lc-features", True)
    shaper.step(now=70.0)
    second = shaper.step(now=91.0)
    assert second is not None
    assert (second.kind, second.new_stage, second.done) == ("fuse", "ingest-history-summary", True)
    assert [s.name for s in controller.desired.spec.stages] == ["ingest", "distribute"]
