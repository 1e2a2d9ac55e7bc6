"""A capacity plan: how many replicas (and cores) each stage needs for a survey's load, from what each
stage costs per alert.

A stage's worker is one thread of Python: it takes one core at most, so its replicas are its cores. Its
cost is the seconds a replica is occupied per alert, measured in one of two ways (``starling plan``,
``starling.cli.plan``):

- in this process: the pipeline's components run on a sample of alerts, their CPU time
  (``time.thread_time``, which the machine's other load does not inflate) summed by the stage each belongs
  to (the first stage decodes), plus, for each hop between two stages, what wrapping an alert in an envelope
  and reading it back costs. A lower bound: there is no Kafka here, whose waits (acknowledgements,
  commits) occupy a replica too;
- from a running pipeline (:func:`costs_from_statuses`): the wall seconds each replica spent in whole
  batches (``busy_s``: its CPU, and its waits on Kafka) over the alerts it took.

A load is a survey's visits: ``alerts`` every ``interval_s``. A stage keeps up when its replicas take a
visit's alerts within the interval at the planned utilization (0.7 by default: headroom for bursts, the
Kafka client's own threads and garbage collection): replicas = ceil(alerts x cost / (interval x use)).

Replicas that share their cores (with each other, and with the Kafka broker: one machine) are bounded by
those cores too (:func:`shared_cores_seconds`): what a replica waits on (an acknowledgement) is work for
the broker on the same cores, so N replicas take the longer of their occupation shared N ways and the
CPU all of it needs (workers' and broker's, per alert) over the cores at the planned utilization: processes
that hand work to each other (a batch to the broker, its acknowledgement back) leave a core idle part of
the time, as the headroom planned for bursts assumes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Load:
    """A survey's visits: ``alerts`` every ``interval_s`` seconds."""

    name: str
    alerts: int
    interval_s: float

    @property
    def rate(self) -> float:
        return self.alerts / self.interval_s


# Rubin: ~10,000 alerts a visit on average and up to ~40,000, a visit every ~39 s (DMTN-102, LSE-163).
# ZTF: a busy exposure gives a few thousand alerts, every ~38 s (30 s exposures and slews).
DEFAULT_LOADS = (
    Load("Rubin average", 10_000, 39.0),
    Load("Rubin peak", 40_000, 39.0),
    Load("ZTF busy", 3_000, 38.0),
)


@dataclass(frozen=True)
class StagePlan:
    stage: str
    load: str
    cpu_ms_per_alert: float
    replicas: int
    visit_s: float  # how long its replicas take a visit's alerts, at full use of their cores


# The share of a core a replica is planned at, and the share of shared cores the work gets.
PLANNED_UTILIZATION = 0.7


def _check_utilization(utilization: float) -> None:
    if not 0 < utilization <= 1:
        raise ValueError("utilization is a share of a core: more than 0, at most 1")


def plan(
    costs: Mapping[str, float], loads: Sequence[Load], utilization: float = PLANNED_UTILIZATION
) -> list[StagePlan]:
    """Per stage and load: replicas (one core each) to keep up, and the time they take a visit."""
    _check_utilization(utilization)
    plans = []
    for load in loads:
        for stage, cost in costs.items():
            replicas = max(1, math.ceil(load.alerts * cost / (load.interval_s * utilization)))
            plans.append(StagePlan(stage, load.name, 1000 * cost, replicas, load.alerts * cost / replicas))
    return plans


def shared_cores_seconds(
    alerts: int,
    busy_s: float,
    cpu_s: float,
    replicas: int,
    cores: int,
    utilization: float = PLANNED_UTILIZATION,
) -> float:
    """How long ``replicas`` of a stage take ``alerts`` on ``cores`` shared with all the work they make: each
    replica occupied ``busy_s`` per alert, and ``cpu_s`` per alert of CPU in all (every process's: the
    workers', the broker's) on the cores at ``utilization``. The longer of the two bounds: replicas beyond
    the cores add no speed."""
    if replicas < 1 or cores < 1:
        raise ValueError("replicas and cores: at least 1 each")
    _check_utilization(utilization)
    return alerts * max(busy_s / replicas, cpu_s / (cores * utilization))


def costs_from_statuses(statuses: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, float]:
    """Seconds a replica of each stage is occupied per alert, from the replicas' ``/status`` (``busy_s``
    over ``alerts_in``)."""
    costs = {}
    for stage, replicas in statuses.items():
        taken = list(replicas)
        alerts = sum(int(s.get("alerts_in") or 0) for s in taken)
        if alerts:
            costs[stage] = sum(float(s.get("busy_s") or 0.0) for s in taken) / alerts
    return costs
