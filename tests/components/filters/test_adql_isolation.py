"""One user's filter never costs another: a filter that raises, or runs past its time budget, matches
nothing in that batch while every other filter (of its shape too) is judged as ever; it is counted,
and paused with its reason after failing batches in a row; no alert becomes a dead letter for it."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import starling.adql.numpy_functions as numpy_functions
from starling.adql.language import compile_filter
from starling.adql.plan import Failure, FilterPlan, run_filter
from starling.adql.values import Vec
from starling.alert.model import Alert
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig, BatchColumns, current_catalogue
from starling.core.component import Batch
from tests.support.helpers import synthetic_alerts

_RUNS = iter(range(10**6))


def busy(seconds: float) -> None:
    """Compute for ``seconds`` of this thread's CPU time (budgets are CPU time: sleeping costs none)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def unique() -> str:
    """A number no other test's filter has (compiled groups are remembered between plans)."""
    return f"{next(_RUNS)}.{time.time_ns() % 10**6}"


@pytest.fixture
def cot(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[Any], Any]]:
    """COT made to do what a test wants (no other filter here uses it)."""
    behaviours: dict[str, Callable[[Any], Any]] = {"call": lambda x: 1.0 / np.tan(x)}
    table = dict(numpy_functions._MATHS_1)
    table["COT"] = lambda x: behaviours["call"](x)
    monkeypatch.setattr(numpy_functions, "_MATHS_1", table)
    return behaviours


def poisoned(x: Any) -> Any:
    if np.any(np.asarray(x) > 1000):
        raise ValueError("a value it cannot take")
    return 1.0 / np.tan(x)


@pytest.fixture(scope="module")
def batches() -> list[list[Alert]]:
    alerts = synthetic_alerts(400)
    return [alerts[i : i + 100] for i in range(0, 400, 100)]


def _judge(batch_alerts: list[Alert], filters: list[AdqlFilter]) -> Batch:
    batch = Batch(batch_alerts)
    AdqlFilter.cooperate(batch, filters)
    for component in filters:
        component.process(batch)  # never raises for the filter's fault
    return batch


def _alone(expression: str, alerts: list[Alert]) -> list[Alert]:
    verdicts = compile_filter(expression).evaluate(BatchColumns(alerts))
    return [a for a, keep in zip(alerts, verdicts, strict=True) if keep]


def test_a_filter_that_raises_costs_only_itself(cot: dict[str, Any], batches: list[list[Alert]]) -> None:
    cot["call"] = poisoned
    n = unique()
    expressions = {
        "bright": "mag < 19",
        "brighter": "mag < 18",  # the same shape as bright: judged with it
        "bad": f"COT(mag + 5000.{n[-3:]}) < 1e9",  # raises on every batch
        "same-shape": f"COT(mag + 1.{n[-3:]}) < 1e9",  # the shape of bad, values it takes
    }
    config = {"max_failing_batches": 3}
    filters = [AdqlFilter(AdqlFilterConfig(expression=e, **config), name) for name, e in expressions.items()]
    by_name = {f.name: f for f in filters}
    for index, alerts in enumerate(batches):
        batch = _judge(alerts, filters)
        assert batch.matches["bad"] == []
        for name in ("bright", "brighter", "same-shape"):
            assert batch.matches[name] == _alone(expressions[name], alerts), (index, name)
        _, judgement = batch.shared["filters.judgement"]
        if index < 3:
            assert set(judgement.failures) == {"bad"}
            assert "ValueError: a value it cannot take" in judgement.failures["bad"].reason
        else:  # paused: not judged at all any more
            assert "bad" not in judgement.failures
            assert "bad" not in judgement.verdicts
    bad = by_name["bad"].counters()
    assert bad["errors"] == 3
    assert bad["paused"] is True
    assert bad["paused_reason"].startswith("paused after 3 failing batches in a row: ValueError")
    assert by_name["bad"].describe()["paused_reason"] == bad["paused_reason"]
    for name in ("bright", "brighter", "same-shape"):
        counters = by_name[name].counters()
        assert (counters["errors"], counters["paused"], counters["paused_reason"]) == (0, False, None)


def test_a_batch_that_goes_well_starts_the_count_again(
    cot: dict[str, Any], batches: list[list[Alert]]
) -> None:
    filter_ = AdqlFilter(
        AdqlFilterConfig(expression=f"COT(mag) < {unique()}", max_failing_batches=2), "flaky"
    )

    def fails(x: Any) -> Any:
        return poisoned(np.asarray(x) + 2000)

    for behaviour in (fails, np.tan, fails, np.tan):
        cot["call"] = behaviour
        _judge(batches[0], [filter_])
    counters = filter_.counters()
    assert (counters["errors"], counters["failing_batches_in_a_row"], counters["paused"]) == (2, 0, False)


def test_a_filter_past_its_budget_is_stopped_then_paused(
    cot: dict[str, Any], batches: list[list[Alert]]
) -> None:
    def slow(x: Any) -> Any:
        busy(0.05)
        return 1.0 / np.tan(x)

    cot["call"] = slow
    n = unique()
    terms = " AND ".join(f"COT(mag + {i}.{n[-3:]}) < 1e9" for i in range(40))  # 2 s if not stopped
    slow_filter = AdqlFilter(AdqlFilterConfig(expression=terms, budget_s=0.1, max_failing_batches=2), "slow")
    bright = AdqlFilter(AdqlFilterConfig(expression="mag < 19"), "bright")
    for alerts in batches[:2]:
        start = time.thread_time()  # CPU seconds, as budgets are counted
        batch = _judge(alerts, [slow_filter, bright])
        assert time.thread_time() - start < 1.0  # stopped between two operations, not after 40
        assert batch.matches["slow"] == []
        assert batch.matches["bright"] == _alone("mag < 19", alerts)
    counters = slow_filter.counters()
    assert counters["overruns"] == 2
    assert counters["errors"] == 0
    assert "time budget of 0.1 s" in counters["paused_reason"]
    assert counters["slowest_batch_s"] < 1.0


def test_one_operation_longer_than_the_budget_is_measured_and_counted(
    cot: dict[str, Any], batches: list[list[Alert]]
) -> None:
    def stalls(x: Any) -> Any:
        busy(0.25)  # one operation: nothing to stop it in
        return 1.0 / np.tan(x)

    cot["call"] = stalls
    slow = AdqlFilter(AdqlFilterConfig(expression=f"COT(mag) < {unique()}", budget_s=0.1), "stall")
    batch = _judge(batches[0], [slow])
    assert batch.matches["stall"] == []
    assert slow.counters()["overruns"] == 1
    assert slow.counters()["slowest_batch_s"] >= 0.25


def test_a_collection_of_the_whole_heap_is_not_charged_to_a_filter(batches: list[list[Alert]]) -> None:
    """A full garbage collection walks the process's whole heap (9 ms and more in a worker, past a small
    batch's share of a user): one due when a filter is timed must not make the filter overrun."""
    compiled, columns = compile_filter("mag < 19"), BatchColumns(batches[0])
    previous = gc.get_threshold()
    try:
        gc.disable()
        heap = [[i] for i in range(1_000_000)]  # young objects: the next collection walks them all
        gc.set_threshold(1, 1, 1)  # and the next allocation of a container starts it
        started = time.thread_time()
        gc.enable()
        outcome, seconds = run_filter(compiled, columns, 0.005)
        spent = time.thread_time() - started
    finally:
        gc.enable()
        gc.set_threshold(*previous)
    assert spent > 0.02, "no collection ran: the test proves nothing"
    assert not isinstance(outcome, Failure), outcome
    assert seconds < 0.005
    assert len(heap) == 1_000_000


def test_like_is_stopped_between_chunks_of_values() -> None:
    """A LIKE over long values that would take seconds of CPU is stopped near its budget. Measured on the
    CPU clock budgets are counted on (wall time on a shared machine says nothing of the filter)."""
    compiled = compile_filter("object_id LIKE '%" + "a_" * 40 + "b%'")
    rows = 100_000  # about 1.7 s of CPU unstopped on this machine (and 120 MB of fixed-width strings)

    class Long:
        def __init__(self) -> None:
            self.deadline: float | None = None
            self.values = Vec(np.array(["a" * 300] * rows), np.bool_(False), "string")

        def __len__(self) -> int:
            return rows

        def column(self, field: Any) -> Vec:
            return self.values

    outcome, seconds = run_filter(compiled, Long(), 0.02)  # seconds: the judging thread's CPU time
    assert outcome.overrun
    assert "time budget" in outcome.reason
    assert seconds < 0.3, seconds  # the budget and one chunk, not the whole column


def test_a_filter_that_no_longer_compiles_is_reported_and_the_rest_judged(batches: list[list[Alert]]) -> None:
    plan = FilterPlan([("gone", "no_such_field < 1"), ("bright", "mag < 19")], current_catalogue())
    judgement = plan.judge(BatchColumns(batches[0]))
    assert "unknown field 'no_such_field'" in judgement.failures["gone"].reason
    assert set(judgement.verdicts) == {"bright"}


def test_the_budget_and_the_pause_are_bounded_settings() -> None:
    config = AdqlFilterConfig(expression="mag < 19")
    assert (config.budget_s, config.max_failing_batches) == (0.5, 3)
    with pytest.raises(ValidationError, match="budget_s"):
        AdqlFilterConfig(expression="mag < 19", budget_s=0)
    with pytest.raises(ValidationError, match="budget_s"):
        AdqlFilterConfig(expression="mag < 19", budget_s=3600)
    with pytest.raises(ValidationError, match="max_failing_batches"):
        AdqlFilterConfig(expression="mag < 19", max_failing_batches=0)


def test_in_a_pipeline_no_alert_is_dead_lettered_for_a_failing_filter(
    cot: dict[str, Any], tmp_path: Path
) -> None:
    from starling.core.embedded import EmbeddedPipeline
    from starling.core.spec import ComponentSpec, PipelineSpec

    cot["call"] = poisoned
    spec = PipelineSpec(
        batch_size=100,
        source=ComponentSpec(
            use="synthetic", config={"alerts": 300, "cutouts": False, "alerts_per_visit": 50}
        ),
        filters=[
            ComponentSpec(use="adql", name="bad", config={"expression": f"COT(mag + 5000) < {unique()}"}),
            ComponentSpec(use="adql", name="bright", config={"expression": "mag < 19"}),
        ],
        sinks=[ComponentSpec(use="files", config={"formats": ["jsonl"]})],
    )
    summary = EmbeddedPipeline(spec, tmp_path).run()
    assert summary.dead_letters == {}
    assert summary.outputs["bad"]["errors"] == 3
    assert summary.outputs["bad"]["paused_reason"].startswith("paused after 3 failing batches")
    expected = {
        a.alert_id for a in synthetic_alerts(300, alerts_per_visit=50) if a.mag is not None and a.mag < 19
    }
    lines = (tmp_path / "matches" / "bright.jsonl").read_text().splitlines()
    assert {json.loads(line)["alert_id"] for line in lines} == expected


def test_a_users_filters_together_take_at_most_its_share_of_the_batch(
    cot: dict[str, Callable[[Any], Any]],
) -> None:
    """Each of ada's filters is within its own budget, but together they would take the stage: past her
    share of the batch's time they are not judged in that batch, while bob's and the operator's are."""

    def slow(x: Any) -> Any:
        busy(0.01)  # each of her filters: 10 ms, well within its own budget of 0.5 s
        return 1.0 / np.tan(x)

    cot["call"] = slow
    alerts = synthetic_alerts(200, seed=3)
    share = {"owner_share_ms_per_1000_alerts": 100.0}  # 20 ms for a batch of 200
    heavy = [  # each of another shape (i ABS around mag), so none shares another's computation
        AdqlFilter(
            AdqlFilterConfig(expression=f"COT({'ABS(' * i}mag{')' * i}) > -{unique()}", owner="ada", **share),
            f"ada.f{i}",
        )
        for i in range(20)
    ]
    bob = AdqlFilter(AdqlFilterConfig(expression="mag < 19", owner="bob", **share), "bob.bright")
    operator = AdqlFilter(AdqlFilterConfig(expression="mag < 18"), "bright")
    stage = [*heavy, bob, operator]
    batch = Batch(list(alerts))
    AdqlFilter.cooperate(batch, stage)
    for component in stage:
        component.process(batch)
    hers = sum(f.counters()["evaluation_s"] for f in heavy)
    assert hers < 0.1  # her 20 filters would take 200 ms in all; her share is 20 ms (and one overrun)
    assert {a.alert_id for a in batch.matches["bob.bright"]} == {
        a.alert_id for a in alerts if a.mag is not None and a.mag < 19
    }
    assert {a.alert_id for a in batch.matches["bright"]} == {
        a.alert_id for a in alerts if a.mag is not None and a.mag < 18
    }
    judged = [f for f in heavy if f.counters()["overruns"] == 0]
    assert 0 < len(judged) < len(heavy)
    assert any("share of this batch's time is spent" in str(f.counters()["last_failure"]) for f in heavy)
