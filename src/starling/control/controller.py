"""The controller: holds the desired pipeline and makes the running workers match it.

Every change (add, remove, reorder, reconfigure a component; set a stage's replicas) is validated
against the components' own config models first, then saved in the store with a new version, then
written where new and restarted workers read it, then pushed to the running replicas of the stage
(``PUT /components``), which apply it between two batches: no restart, no alert lost or doubled.
Its HTTP API is ``starling.control.api`` (``controller_app``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starling.assembly import route_deliveries
from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.autoscaler import Autoscaler
from starling.control.backends.base import Backend
from starling.control.client import WorkerClient
from starling.control.quotas import Quotas
from starling.control.state import ControllerState, DesiredPipeline
from starling.control.trial import Trials, pipeline_store, try_filter_on_store
from starling.core.registry import build_component
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.core.stages import STAGES, StageName, stage_component_specs, stage_kind, stage_layout
from starling.errors import ConfigError, StoreError
from starling.transport.kafka.clients import GroupLag

_STAGE_FIELD: dict[StageName, str] = {"ingest": "annotators", "filter": "filters", "distribute": "sinks"}


def with_stage(spec: PipelineSpec, stage: StageName, components: list[ComponentSpec]) -> PipelineSpec:
    return spec.model_copy(update={_STAGE_FIELD[stage]: components})


# How long a change's answer waits for every replica to apply it. Each replica applies changes one after
# another between batches: many users changing at once on a busy machine take several seconds.
LIVE_WAIT_S = 15.0


class Controller:
    def __init__(
        self,
        state: ControllerState,
        backend: Backend,
        desired: DesiredPipeline,
        store_location: Path | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.state = state
        self.quotas = quotas or Quotas()
        self.store_location = store_location
        self.backend = backend
        self.desired = desired
        self.autoscaler = Autoscaler(self)
        self.trials = Trials()
        # Per stage, the replicas the latest component change went to, and the configuration version
        # each accepted it as (None: it did not answer).
        self.rollouts: dict[StageName, list[tuple[WorkerClient, int | None]]] = {}
        self.started_at = time.time()
        # Re-entrant: an edit reads, decides and writes under it, and the write takes it again.
        self._lock = threading.RLock()
        self._lag_readers: dict[StageName, GroupLag] = {}

    def stage_lag(self, stage: StageName) -> int:
        """The stage's consumer-group lag, read from the broker."""
        reader = self._lag_readers.get(stage)
        if reader is None:
            kafka = self.desired.spec.kafka
            reader = GroupLag(kafka, kafka.group(stage), stage_layout(self.desired.spec, stage).input_topics)
            self._lag_readers[stage] = reader
        return reader.read(timeout_s=5.0)

    def close(self) -> None:
        for reader in self._lag_readers.values():
            reader.close()

    # -- reading -----------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        stages = []
        for stage in STAGES:
            layout = stage_layout(self.desired.spec, stage)
            workers: list[dict[str, Any]] = []
            for worker in self.backend.workers(stage):
                status = worker.get("/status", timeout_s=2.0) or {}
                workers.append(
                    {
                        "replica": worker.replica,
                        "alive": worker.alive,
                        "url": worker.base_url,
                        "state": status.get("state"),
                        "messages_in": status.get("messages_in"),
                        "lag": status.get("lag"),
                        "config_version": status.get("config_version"),
                        "uptime_s": status.get("uptime_s"),
                        "dead_letters": status.get("dead_letters"),
                        "dead_letter_reasons": status.get("dead_letter_reasons") or {},
                    }
                )
            messages = sum(w["messages_in"] or 0 for w in workers)
            reasons: Counter[str] = Counter()
            for worker_view in workers:
                reasons.update(worker_view.pop("dead_letter_reasons"))
            uptime = max((w["uptime_s"] or 0 for w in workers), default=0)
            stages.append(
                {
                    "name": stage,
                    "components": [c.model_dump() for c in stage_component_specs(self.desired.spec, stage)],
                    "replicas": self.desired.replicas.get(stage, 0),
                    "input_topics": layout.input_topics,
                    "output_topic": layout.output_topic,
                    "messages_in": messages,
                    "alerts_per_s": round(messages / uptime, 1) if uptime else 0.0,
                    "lag": sum(w["lag"] or 0 for w in workers),
                    "dead_letters": sum(w["dead_letters"] or 0 for w in workers),
                    "dead_letter_reasons": dict(reasons.most_common(20)),
                    "workers": workers,
                }
            )
        return {"version": self.desired.version, "stages": stages}

    # -- changing ----------------------------------------------------------------------------------

    def _change(
        self,
        stage: StageName,
        components: list[ComponentSpec] | None = None,
        replicas: int | None = None,
        autoscaling: AutoscalePolicy | bool | None = False,
    ) -> DesiredPipeline:
        """``autoscaling``: a policy to set, None to switch it off, False (default) to leave it."""
        with self._lock:
            spec = self.desired.spec
            if components is not None:
                names = [c.instance_name for c in components]
                if len(set(names)) != len(names):
                    raise ConfigError(f"component names must be unique in a stage; got {names}")
                kind = stage_kind(stage)
                for component in components:  # validated against each component's own config model
                    build_component(component.use, component.config, component.instance_name, kind)
                spec = with_stage(spec, stage, components)
            counts = dict(self.desired.replicas)
            policies = dict(self.desired.autoscaling)
            if isinstance(autoscaling, AutoscalePolicy):
                policies[stage] = autoscaling
                bounded = max(autoscaling.min_replicas, min(autoscaling.max_replicas, counts.get(stage, 1)))
                if bounded != counts.get(stage):
                    replicas = bounded
            elif autoscaling is None:
                policies.pop(stage, None)
            if replicas is not None:
                counts[stage] = replicas
            desired = DesiredPipeline(
                version=self.desired.version + 1, spec=spec, replicas=counts, autoscaling=policies
            )
            self.state.save(desired)
            self.desired = desired
            self.backend.write_spec(spec)
            if components is not None:
                payload = [c.model_dump() for c in components]
                accepted: list[tuple[WorkerClient, int | None]] = []
                for worker in self.backend.workers(stage):
                    # A worker that is down reads the new pipeline from its file when it restarts.
                    answer = worker.put("/components", payload)
                    accepted.append((worker, int(answer["version"]) if answer else None))
                self.rollouts[stage] = accepted
            if replicas is not None:
                self.backend.scale({stage: replicas})
            return desired

    def wait_live(self, stage: StageName, timeout_s: float = LIVE_WAIT_S) -> bool:
        """Whether every replica of ``stage`` applied its latest change (waiting up to ``timeout_s``):
        a replica applies a change between two batches, or within a fraction of a second when idle.
        False if one did not accept it (it is down, and will read it when it starts) or is slow."""
        deadline = time.monotonic() + timeout_s
        waiting = list(self.rollouts.get(stage, []))
        if not waiting and self.desired.replicas.get(stage, 0) > 0 and stage in self.rollouts:
            return False  # replicas are wanted, and none is running to apply it
        while waiting:
            if any(version is None for _, version in waiting):
                return False
            status = [(w, v, w.get("/status", timeout_s=2.0) or {}) for w, v in waiting]
            waiting = [
                (w, v)
                for w, v, s in status
                if int(s.get("config_version") or 0) < (v or 0) or s.get("pending_config_version") is not None
            ]
            if not waiting:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def components(self, stage: StageName) -> list[ComponentSpec]:
        return stage_component_specs(self.desired.spec, stage)

    def add(self, stage: StageName, component: ComponentSpec, position: int | None) -> DesiredPipeline:
        current = self.components(stage)
        index = len(current) if position is None else max(0, min(position, len(current)))
        return self._change(stage, [*current[:index], component, *current[index:]])

    def remove(self, stage: StageName, name: str) -> DesiredPipeline:
        current = self.components(stage)
        if name not in [c.instance_name for c in current]:
            raise KeyError(name)
        return self._change(stage, [c for c in current if c.instance_name != name])

    def reorder(self, stage: StageName, names: list[str]) -> DesiredPipeline:
        current = {c.instance_name: c for c in self.components(stage)}
        if sorted(names) != sorted(current):
            raise ConfigError(f"the new order must name each component of {stage} once: {sorted(current)}")
        return self._change(stage, [current[n] for n in names])

    def patch(self, stage: StageName, name: str, changes: dict[str, Any]) -> DesiredPipeline:
        current = self.components(stage)
        for index, component in enumerate(current):
            if component.instance_name == name:
                updated = component.model_copy(update={"config": {**component.config, **changes}})
                return self._change(stage, [*current[:index], updated, *current[index + 1 :]])
        raise KeyError(name)

    def edit(
        self, stage: StageName, edit: Callable[[list[ComponentSpec]], list[ComponentSpec]]
    ) -> DesiredPipeline:
        """Read a stage's components, change them with ``edit`` and write them, as one step: changes
        made at the same time (by one user or many) each see the one before, and none is lost. ``edit``
        may raise to refuse the change (nothing is written)."""
        with self._lock:
            components = edit(self.components(stage))
            if stage == "filter":
                return self.set_filters(components)
            return self._change(stage, components)

    def set_filters(self, components: list[ComponentSpec]) -> DesiredPipeline:
        """The filter stage's new components (users' filters among them). Their outputs reach the
        distribute stage's ``deliver`` sink first, so no match is judged before its route is known."""
        for component in components:  # refused here, before anything changes
            build_component(component.use, component.config, component.instance_name, "filter")
        with self._lock:
            routed = route_deliveries(with_stage(self.desired.spec, "filter", components))
            if routed.sinks != self.desired.spec.sinks:
                self._change("distribute", list(routed.sinks))
            return self._change("filter", components)

    def set_annotators(self, components: list[ComponentSpec]) -> DesiredPipeline:
        """The ingest stage's new annotators (users' watchlists and watchmaps among them)."""
        return self._change("ingest", components)

    def try_filter(self, expression: str, limit: int, sample: int) -> dict[str, Any]:
        """Judge the latest stored alerts with ``expression`` (see ``starling.control.trial``)."""
        if self.store_location is None:
            raise StoreError("this controller has no store to read")
        location = pipeline_store(self.desired.spec, self.store_location.parent) or self.store_location
        return self.trials.run(try_filter_on_store, location, expression, limit, sample)

    def set_replicas(self, stage: StageName, replicas: int) -> DesiredPipeline:
        return self._change(stage, replicas=replicas)

    def set_autoscaling(self, stage: StageName, policy: AutoscalePolicy | None) -> DesiredPipeline:
        return self._change(stage, autoscaling=policy)
