"""The capacity plan (``starling.control.capacity``), and ``starling plan`` measuring a pipeline here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from starling.control.capacity import Load, costs_from_statuses, plan, shared_cores_seconds


def test_replicas_keep_up_with_a_visit_at_the_planned_use_of_a_core() -> None:
    costs = {"ingest": 0.002, "filter": 0.0005}  # 2 ms and 0.5 ms an alert
    planned = {(p.load, p.stage): p for p in plan(costs, [Load("visit", 10_000, 40.0)], utilization=0.5)}
    # 10,000 x 2 ms = 20 s of work a visit; at half a core each, 40 s a visit: 1 replica. Filter: 1.
    assert planned["visit", "ingest"].replicas == 1
    assert planned["visit", "ingest"].visit_s == pytest.approx(20.0)
    peak = {p.stage: p for p in plan(costs, [Load("peak", 40_000, 40.0)], utilization=0.5)}
    assert peak["ingest"].replicas == 4  # 80 s of work into 20 s of each replica's 40
    assert peak["ingest"].visit_s == pytest.approx(20.0)
    assert peak["filter"].replicas == 1
    assert peak["ingest"].cpu_ms_per_alert == pytest.approx(2.0)
    with pytest.raises(ValueError, match="utilization"):
        plan(costs, [Load("x", 1, 1.0)], utilization=1.5)


def test_replicas_sharing_cores_are_bounded_by_the_cpu_all_their_work_takes() -> None:
    # 1 ms occupied an alert, 1.5 ms of CPU in all (the worker's and the broker's), on 2 cores used fully.
    one = shared_cores_seconds(10_000, 0.001, 0.0015, replicas=1, cores=2, utilization=1.0)
    assert one == pytest.approx(10.0)  # occupation bounds one replica
    two = shared_cores_seconds(10_000, 0.001, 0.0015, replicas=2, cores=2, utilization=1.0)
    assert two == pytest.approx(7.5)  # the cores bound two: not half of one
    assert shared_cores_seconds(10_000, 0.001, 0.0015, 2, 8, utilization=1.0) == pytest.approx(5.0)
    assert shared_cores_seconds(10_000, 0.001, 0.0015, 4, 2, utilization=1.0) == pytest.approx(7.5)
    # At the planned utilization (0.7 of a core) the cores give less: 15 s of CPU over 1.4 cores.
    assert shared_cores_seconds(10_000, 0.001, 0.0015, replicas=2, cores=2) == pytest.approx(15 / 1.4)
    with pytest.raises(ValueError, match="at least 1"):
        shared_cores_seconds(10, 0.001, 0.001, replicas=0, cores=2)
    with pytest.raises(ValueError, match="utilization"):
        shared_cores_seconds(10, 0.001, 0.001, replicas=1, cores=2, utilization=0)


def test_a_running_pipelines_costs_are_its_replicas_busy_time_over_their_alerts() -> None:
    statuses = {
        "ingest": [{"alerts_in": 1000, "busy_s": 1.0}, {"alerts_in": 3000, "busy_s": 2.0}],
        "filter": [{"alerts_in": 0, "busy_s": 0.0}],  # nothing yet: no cost known
    }
    assert costs_from_statuses(statuses) == {"ingest": pytest.approx(0.00075)}


def _plan(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``starling plan`` run with ``options``, its plan written as JSON: the process and the plan."""
    written = tmp_path / "plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "starling", "plan", *options, "--json", str(written)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done, json.loads(written.read_text())


def test_starling_plan_measures_the_default_pipeline_and_writes_its_plan(tmp_path: Path) -> None:
    done, result = _plan(tmp_path, "--alerts", "300", "--load", "night=10000/39")
    assert set(result["costs"]) == {"ingest", "filter", "distribute"}
    assert all(cost > 0 for cost in result["costs"].values())
    assert [(row["load"], row["stage"]) for row in result["plan"]] == [
        ("night", "ingest"),
        ("night", "filter"),
        ("night", "distribute"),
    ]
    assert "cores in all" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "starling", "plan", "--load", "nonsense"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "NAME=ALERTS/SECONDS" in refused.stderr + refused.stdout


def test_a_plan_on_a_few_real_samples_replays_them_past_first_use_costs(
    samples: Path, tmp_path: Path
) -> None:
    folder = samples / "realworld/rubin"
    _, result = _plan(tmp_path, "--samples", str(folder))
    found = len(list(folder.glob("*.avro")))
    assert found == 9
    assert result["source"] == "1,008 real messages, measured here"  # the 9 replayed 112 times
    assert all(cost > 0 for cost in result["costs"].values())


def test_the_plan_counts_no_first_batch_and_measures_a_single_batch_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the first batch pays once (filters compiled, tables made) is no cost per alert."""
    from starling.assembly import default_pipeline
    from starling.cli import plan as plan_cli
    from starling.core.spec import ComponentSpec

    source = ComponentSpec(use="synthetic", config={"alerts": 300, "cutouts": False})
    alerts, spent, after_the_first = plan_cli._component_costs(
        default_pipeline(source, batch_size=100), source
    )
    assert after_the_first
    assert alerts == 200
    assert spent["decode"] > 0
    runs: list[bool] = []
    measured = plan_cli._component_costs

    def counted(*args: Any) -> tuple[int, dict[str, float], bool]:
        result = measured(*args)
        runs.append(result[2])
        return result

    monkeypatch.setattr(plan_cli, "_component_costs", counted)
    costs = plan_cli.measure_costs(default_pipeline(source), source, [])  # one batch of 500: 300 alerts
    assert runs == [False, False]  # measured again, after what is paid once was paid
    assert costs["ingest"] > 0
