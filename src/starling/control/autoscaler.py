"""Replicas that follow the load: a per-stage policy on consumer lag, evaluated by the controller.

Each second the autoscaler reads the stage's consumer-group lag from the broker (what no replica has
committed yet, so replicas coming and going do not skew it) and wants
``ceil(lag / target_lag_per_replica)`` replicas, kept within ``[min_replicas, max_replicas]``. It
scales up at once when it wants more (then waits ``scale_up_cooldown_s`` before the next step up),
and scales down only after ``scale_down_cooldown_s`` without a change, so a burst is not followed by
flapping. Scaling down drains the replicas it removes (the backend's job): nothing is lost or doubled.
Every decision is kept with its reason, for ``/status``, ``/metrics`` and the pipeline view.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.loop import PeriodicLoop
from starling.control.state import DesiredPipeline

log = logging.getLogger("starling.autoscaler")


class Scalable(Protocol):
    """What the autoscaler drives: the controller, seen only through what scaling needs."""

    @property
    def desired(self) -> DesiredPipeline: ...

    def stage_lag(self, stage: str) -> int: ...

    def set_replicas(self, stage: str, replicas: int) -> object: ...


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    stage: str
    replicas_from: int
    replicas_to: int
    lag: int
    reason: str


class Autoscaler(PeriodicLoop):
    def __init__(self, controller: Scalable, interval_s: float = 1.0) -> None:
        super().__init__("autoscaler", interval_s)
        self.controller = controller
        self.decisions: deque[Decision] = deque(maxlen=500)
        self.last_change: dict[str, float] = {}
        self.last_lag: dict[str, int] = {}

    def step(self, now: float | None = None) -> list[Decision]:
        now = time.monotonic() if now is None else now
        made = []
        desired = self.controller.desired
        for stage, policy in desired.autoscaling.items():
            lag = self.controller.stage_lag(stage)
            self.last_lag[stage] = lag
            current = desired.replicas.get(stage, 0)
            wanted = policy.wanted(lag)
            since = now - self.last_change.get(stage, -math.inf)
            cooldown = policy.scale_up_cooldown_s if wanted > current else policy.scale_down_cooldown_s
            if wanted == current or since < cooldown:
                continue
            reason = _why(policy, lag, current, wanted, since)
            decision = Decision(time.time(), stage, current, wanted, lag, reason)
            log.info("%s: %d -> %d replicas (%s)", stage, current, wanted, reason)
            self.last_change[stage] = now
            try:
                self.controller.set_replicas(stage, wanted)
            except KeyError:
                continue  # the stage left the pipeline (a reshape) since this step read it
            self.decisions.append(decision)
            made.append(decision)
            desired = self.controller.desired
        return made

    def report(self) -> dict[str, Any]:
        return {
            "policies": {s: p.model_dump() for s, p in self.controller.desired.autoscaling.items()},
            "lag": dict(self.last_lag),
            "decisions": [asdict(d) for d in list(self.decisions)[-50:]],
        }


def _why(policy: AutoscalePolicy, lag: int, current: int, wanted: int, since: float) -> str:
    """A decision's reason in words: the lag against what the replicas carry, or the policy's bounds."""
    per_replica = policy.target_lag_per_replica
    if wanted > current:
        if current < policy.min_replicas and lag <= current * per_replica:
            return f"lag {lag}; {current} running, below the policy's minimum of {wanted}"
        return f"lag {lag} > {current} x {per_replica} per replica"
    if current > policy.max_replicas:
        return f"lag {lag}; {current} running, above the policy's maximum of {wanted}"
    return f"lag {lag} needs {wanted}; {since:.0f} s since the last change"
