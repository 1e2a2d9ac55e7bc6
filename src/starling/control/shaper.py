"""The shape of the chain following the load, as its size does: the shape policy, evaluated by the controller.

Each second, while the desired pipeline has a shape policy (``starling.control.shape_policy``), the shaper
reads each stage's consumer-group lag and what each of its components costs per alert (CPU seconds over
alerts, summed over the stage's replicas' ``/status``), and splits a stage that stays the bottleneck, or
fuses back a stage it split once the load is low, through the controller's reshapes
(``starling.control.reshape``: no alert lost or taken twice). Every decision is kept with its reason, for
``/shape``, ``/status`` and ``/metrics``; a decision that fails (Kafka away, a stage that will not drain)
is kept too, with its error, and the shape stays as it was.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.backends.base import Backend
from starling.control.loop import PeriodicLoop
from starling.control.shape_policy import ShapeChange, ShapePolicy, StageLoad, fuse_wanted, split_wanted
from starling.control.state import DesiredPipeline
from starling.core.stages import USERS_ANNOTATORS, chain_names, stage_names

log = logging.getLogger("starling.shaper")


class Shapeable(Protocol):
    """What the shaper drives: the controller, seen only through what reshaping needs."""

    desired: DesiredPipeline
    backend: Backend

    def stage_lag(self, stage: str) -> int: ...

    def split_stage(
        self, name: str, new_name: str, moved: list[str], replicas: int = 1, by_shaper: bool = False
    ) -> object: ...

    def fuse_stages(self, name: str, following: str) -> object: ...

    def set_autoscaling(self, stage: str, policy: AutoscalePolicy | None) -> object: ...


@dataclass(frozen=True, slots=True)
class ShapeDecision:
    at: float
    kind: str
    stage: str
    components: list[str]
    new_stage: str | None
    reason: str
    done: bool
    error: str | None = None


class Shaper(PeriodicLoop):
    def __init__(self, controller: Shapeable, interval_s: float = 1.0) -> None:
        super().__init__("shaper", interval_s)
        self.controller = controller
        self.decisions: deque[ShapeDecision] = deque(maxlen=200)
        self._behind_since: dict[str, float] = {}
        self._low_since: dict[str, float] = {}
        self._last_decision = -float("inf")

    def step(self, now: float | None = None) -> ShapeDecision | None:
        now = time.monotonic() if now is None else now
        policy = self.controller.desired.shape
        if policy is None:
            self._behind_since.clear()
            self._low_since.clear()
            return None
        change = self._fuse_wanted(policy, now) or self._split_wanted(policy, now)
        if change is None or now - self._last_decision < policy.cooldown_s:
            return None
        self._last_decision = now
        # What was measured before this change says nothing of the shape after it: the clocks start again.
        self._behind_since.clear()
        self._low_since.clear()
        return self._make(change)

    def _fuse_wanted(self, policy: ShapePolicy, now: float) -> ShapeChange | None:
        names = stage_names(self.controller.desired.spec)
        for out, origin in self.controller.desired.split_from.items():
            if names.index(out) != names.index(origin) + 1:
                continue  # reshaped since by an operator: no longer a simple split to undo
            lags = (self.controller.stage_lag(origin), self.controller.stage_lag(out))
            low = max(lags) < policy.low_lag
            since = self._low_since.setdefault(out, now) if low else self._low_since.pop(out, None)
            change = fuse_wanted(policy, origin, out, lags, now - since if since is not None else 0.0)
            if change is not None:
                return change
        return None

    def _split_wanted(self, policy: ShapePolicy, now: float) -> ShapeChange | None:
        for stage in chain_names(self.controller.desired.spec):  # a stage beside it delays no one
            if not self.controller.desired.replicas.get(stage):
                continue  # stopped on purpose
            load = self._load(stage)
            behind = load.lag > policy.behind_lag and not load.can_grow
            since = (
                self._behind_since.setdefault(stage, now) if behind else self._behind_since.pop(stage, None)
            )
            change = split_wanted(policy, load, now - since if since is not None else 0.0)
            if change is not None:
                return change
        return None

    def _load(self, stage: str) -> StageLoad:
        desired = self.controller.desired
        autoscaling = desired.autoscaling.get(stage)
        replicas = desired.replicas.get(stage, 1)
        seconds: dict[str, float] = {}
        alerts: dict[str, int] = {}
        for worker in self.controller.backend.workers(stage):
            status = worker.get("/status", timeout_s=2.0) or {}
            for name, counts in (status.get("components") or {}).items():
                seconds[name] = seconds.get(name, 0.0) + float(counts.get("cpu_s") or 0.0)
                alerts[name] = alerts.get(name, 0) + int(counts.get("in") or 0)
        costs = {name: seconds[name] / alerts[name] for name in seconds if alerts.get(name)}
        held = desired.spec.stage(stage)
        only_annotators = not held.filters and not held.sinks
        movable = tuple(c.instance_name for c in held.annotators if c.use not in USERS_ANNOTATORS)
        if not only_annotators or len(movable) != len(held.annotators):
            movable = ()  # moved past filters, or users' lists out of their stage: results would change
        return StageLoad(
            name=stage,
            lag=self.controller.stage_lag(stage),
            can_grow=autoscaling is not None and replicas < autoscaling.max_replicas,
            costs=costs,
            movable=movable,
        )

    def _make(self, change: ShapeChange) -> ShapeDecision:
        new_stage, error = None, None
        try:
            if change.kind == "split":
                new_stage = self._new_name(change.stage, change.components[0])
                self.controller.split_stage(change.stage, new_stage, list(change.components), by_shaper=True)
                autoscaling = self.controller.desired.autoscaling.get(change.stage)
                if autoscaling is not None:  # the component split out scales on its own, as its stage did
                    self.controller.set_autoscaling(new_stage, autoscaling)
            else:
                new_stage = change.taken_in
                assert new_stage is not None
                self.controller.fuse_stages(change.stage, new_stage)
        except Exception as exc:  # kept with its error: the reshape put everything back as it was
            log.exception("shape change failed: %s", change)
            error = str(exc)
        moved = list(change.components)
        decision = ShapeDecision(
            time.time(), change.kind, change.stage, moved, new_stage, change.reason, error is None, error
        )
        log.info("%s %s: %s", change.kind, change.stage, change.reason)
        self.decisions.append(decision)
        return decision

    def _new_name(self, stage: str, component: str) -> str:
        """A stage name for ``component`` split out of ``stage``, unused in the pipeline."""
        base = re.sub(r"[^a-z0-9-]+", "-", f"{stage}-{component}".lower()).strip("-")[:28]
        names = set(stage_names(self.controller.desired.spec))
        return next(n for i in range(1, 1000) if (n := base if i == 1 else f"{base}-{i}") not in names)

    def report(self) -> dict[str, Any]:
        policy = self.controller.desired.shape
        return {
            "policy": policy.model_dump() if policy else None,
            "split": dict(self.controller.desired.split_from),
            "decisions": [asdict(d) for d in list(self.decisions)[-50:]],
        }
