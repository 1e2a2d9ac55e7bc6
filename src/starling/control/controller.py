"""The controller: holds the desired pipeline and makes the running workers match it.

Every change (add, remove, reorder, reconfigure a component; set a stage's replicas) is validated
against the components' own config models first, then saved in the store with a new version, then
written (with that version) where new and restarted workers read it, then handed to the stage's
reconciler (``starling.control.rollout``), which brings the running replicas to it: they apply it
between two batches, with no restart and no alert lost or doubled. Every change reads the current
pipeline and writes the new one under one lock, so no change made at the same time is lost.
Its HTTP API is ``starling.control.api`` (``controller_app``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from starling.assembly import route_deliveries
from starling.control import reshape
from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.autoscaler import Autoscaler
from starling.control.backends.base import Backend
from starling.control.quotas import Quotas
from starling.control.rollout import LIVE_WAIT_S, StageRollout
from starling.control.session_host import ControllerHost
from starling.control.sessions import SessionRunner, make_broker
from starling.control.shape_policy import ShapePolicy
from starling.control.shaper import Shaper
from starling.control.state import ControllerState, DesiredPipeline
from starling.control.trial import Trials, pipeline_store, try_filter_on_store
from starling.core.bodies import checked_body, make_reference, references, resolve
from starling.core.registry import build_component
from starling.core.spec import ComponentSpec, versioned_json
from starling.core.stages import (
    checked,
    delivering_stage,
    filtering_stage,
    stage_component_specs,
    stage_layout,
    stage_names,
    with_stage,
)
from starling.errors import ConfigError, StoreError
from starling.transport.kafka.clients import GroupLag


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
        self.shaper = Shaper(self)
        self.broker = make_broker(
            ControllerHost(self, self.quotas), state=state
        )  # users' own processing (ExecutionBroker)
        self.sessions = SessionRunner(ControllerHost(self, self.quotas), self.broker)
        self.trials = Trials()
        self.started_at = time.time()
        # Re-entrant: an edit reads, decides and writes under it, and the write takes it again.
        self.lock = threading.RLock()
        self._lag_readers: dict[str, GroupLag] = {}
        self._lag_lock = threading.Lock()  # the autoscaler, the shaper and reshapes share the readers
        # One reconciler per stage, from the pipeline as it starts: a replica adopted from an earlier
        # run (Kubernetes) that runs an older list is brought to this one.
        self.rollouts: dict[str, StageRollout] = {}
        for stage in stage_names(desired.spec):
            rollout = StageRollout(stage, backend, partial(self.wanted_replicas, stage))
            rollout.publish(desired.version, stage_component_specs(desired.spec, stage))
            rollout.start()
            self.rollouts[stage] = rollout

    def stage_lag(self, stage: str) -> int:
        """The stage's consumer-group lag, read from the broker."""
        with self._lag_lock:
            reader = self._lag_readers.get(stage)
            if reader is None:
                kafka = self.desired.spec.kafka
                layout = stage_layout(self.desired.spec, stage)
                reader = GroupLag(
                    kafka, kafka.group(stage), layout.input_topics, layout.decodes_survey_messages
                )
                self._lag_readers[stage] = reader
            return reader.read(timeout_s=5.0)

    def wanted_replicas(self, stage: str) -> int:
        return self.desired.replicas.get(stage, 0)

    def follow_load(self) -> None:
        """Start the loops that make the chain follow the load: its size (autoscaler), its shape (shaper);
        and the one that runs users' sessions at their times."""
        self.autoscaler.start()
        self.shaper.start()
        self.sessions.start()

    def close(self) -> None:
        self.autoscaler.stop()
        self.shaper.stop()
        self.sessions.stop()
        for rollout in self.rollouts.values():
            rollout.stop()
        for reader in self._lag_readers.values():
            reader.close()

    # -- reading -----------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        stages = []
        for stage in stage_names(self.desired.spec):
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
                        "applied_pipeline_version": status.get("applied_pipeline_version"),
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
        stage: str,
        components: list[ComponentSpec] | None = None,
        replicas: int | None = None,
        autoscaling: AutoscalePolicy | bool | None = False,
    ) -> DesiredPipeline:
        """``autoscaling``: a policy to set, None to switch it off, False (default) to leave it."""
        with self.lock:
            spec = self.desired.spec
            if stage not in stage_names(spec):
                raise KeyError(stage)  # gone in a reshape since the caller looked (the autoscaler's read)
            if components is not None:
                names = [c.instance_name for c in components]
                if len(set(names)) != len(names):
                    raise ConfigError(f"component names must be unique in a stage; got {names}")
                self.validate(stage, components)
                spec = checked(with_stage(spec, stage, components))
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
            desired = self.desired.model_copy(
                update={
                    "version": self.desired.version + 1,
                    "spec": spec,
                    "replicas": counts,
                    "autoscaling": policies,
                }
            )
            self.fits(desired)
            self.commit(desired)
            if components is not None:
                self.rollouts[stage].publish(desired.version, components)
            if replicas is not None:
                self.backend.scale({stage: replicas})
            return desired

    def validate(
        self, stage: str, components: list[ComponentSpec], current: list[ComponentSpec] | None = None
    ) -> None:
        """Each component new or changed, validated against its own config model with the bodies it
        refers to (ConfigError naming the field); one already in the stage as it is (``current``, by
        default the stage's components now) was validated when it came, so a change to one user's filter
        does not read every watchlist's targets again."""
        if current is None:
            current = stage_component_specs(self.desired.spec, stage)
        for component in components:
            if component not in current:
                config = resolve(component.config, self.body)
                build_component(component.use, config, component.instance_name)

    def commit(self, desired: DesiredPipeline) -> None:
        """Make ``desired`` the desired pipeline: written where new workers read it, then saved; if either
        fails, the pipeline stays what it was (the file written back) and the error is raised."""
        with self.lock:
            before = self.desired
            try:
                self.backend.write_spec(desired.spec, desired.version)
                self.state.save(desired)
            except Exception:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    self.backend.write_spec(before.spec, before.version)
                raise
            self.desired = desired
            self.state.forget_bodies(references(desired.spec.model_dump(mode="json")))

    def forget_lag(self, stage: str) -> None:
        """A stage's lag reader is made anew at the next read (its input topics changed)."""
        with self._lag_lock:
            reader = self._lag_readers.pop(stage, None)
            if reader is not None:
                reader.close()

    def insert_stage(
        self, name: str, after: str, components: list[ComponentSpec], replicas: int = 1
    ) -> DesiredPipeline:
        """See ``starling.control.reshape``."""
        return reshape.insert_stage(self, name, after, components, replicas)

    def add_branch(
        self, name: str, beside: str, components: list[ComponentSpec], replicas: int = 1
    ) -> DesiredPipeline:
        return reshape.add_branch(self, name, beside, components, replicas)

    def remove_stage(self, name: str) -> DesiredPipeline:
        return reshape.remove_stage(self, name)

    def split_stage(
        self, name: str, new_name: str, moved: list[str], replicas: int = 1, by_shaper: bool = False
    ) -> DesiredPipeline:
        return reshape.split_stage(self, name, new_name, moved, replicas, by_shaper)

    def fuse_stages(self, name: str, following: str) -> DesiredPipeline:
        return reshape.fuse_stages(self, name, following)

    def set_shape_policy(self, policy: ShapePolicy | None) -> DesiredPipeline:
        """The policy the shaper follows (None: the shape changes only when an operator changes it)."""
        with self.lock:
            desired = self.desired.model_copy(update={"shape": policy, "version": self.desired.version + 1})
            self.commit(desired)
            return desired

    def keep_body(self, value: Any) -> dict[str, Any]:
        """Keep ``value`` as a stored body (``starling.core.bodies``); the reference that stands for it."""
        reference, data = make_reference(value)
        self.state.put_body(data)
        return reference

    def body(self, digest: str) -> Any:
        """The JSON value of a stored body (ConfigError when none of that digest is kept)."""
        data = self.state.body(digest)
        if data is None:
            raise ConfigError(f"no stored body {digest}")
        return checked_body(digest, data)

    def fits(self, desired: DesiredPipeline) -> None:
        """ConfigError if the backend cannot hold the pipeline where its workers read it (a Kubernetes
        Secret holds 1 MiB): refused before it is saved, so desired state and cluster never diverge."""
        limit = self.backend.max_pipeline_bytes
        if limit is None:
            return
        size = len(versioned_json(desired.spec, desired.version).encode())
        if size > limit:
            raise ConfigError(
                f"the pipeline would take {size:,} bytes, over the {limit:,} its workers can be given here "
                "(a Kubernetes Secret): remove targets, lists or filters, or ask the operator"
            )

    def wait_live(self, version: int, *stages: str, timeout_s: float = LIVE_WAIT_S) -> bool:
        """Whether the pipeline as of ``version`` runs in every replica of each of ``stages``, waiting
        up to ``timeout_s`` in all (see ``StageRollout.wait_live``): a change made at ``version`` is
        then live, whatever changes came after it. A stage a reshape took away since is not waited for: its
        components run in the stage that took them in, which started on the newer pipeline."""
        deadline = time.monotonic() + timeout_s
        rollouts = [self.rollouts[s] for s in stages if s in self.rollouts]
        return all(rollout.wait_live(version, deadline - time.monotonic()) for rollout in rollouts)

    def components(self, stage: str) -> list[ComponentSpec]:
        return stage_component_specs(self.desired.spec, stage)

    # The operator's changes go through ``edit`` like the users': each reads the stage's components
    # under the lock, so none is made on a list another change is replacing at that moment.

    def add(self, stage: str, component: ComponentSpec, position: int | None) -> DesiredPipeline:
        def added(current: list[ComponentSpec]) -> list[ComponentSpec]:
            index = len(current) if position is None else max(0, min(position, len(current)))
            return [*current[:index], component, *current[index:]]

        return self.edit(stage, added)

    def remove(self, stage: str, name: str) -> DesiredPipeline:
        def removed(current: list[ComponentSpec]) -> list[ComponentSpec]:
            if name not in [c.instance_name for c in current]:
                raise KeyError(name)
            return [c for c in current if c.instance_name != name]

        return self.edit(stage, removed)

    def reorder(self, stage: str, names: list[str]) -> DesiredPipeline:
        def reordered(components: list[ComponentSpec]) -> list[ComponentSpec]:
            current = {c.instance_name: c for c in components}
            if sorted(names) != sorted(current):
                raise ConfigError(
                    f"the new order must name each component of {stage} once: {sorted(current)}"
                )
            return [current[n] for n in names]

        return self.edit(stage, reordered)

    def patch(self, stage: str, name: str, changes: dict[str, Any]) -> DesiredPipeline:
        def patched(current: list[ComponentSpec]) -> list[ComponentSpec]:
            for index, component in enumerate(current):
                if component.instance_name == name:
                    updated = component.model_copy(update={"config": {**component.config, **changes}})
                    return [*current[:index], updated, *current[index + 1 :]]
            raise KeyError(name)

        return self.edit(stage, patched)

    def edit(self, stage: str, edit: Callable[[list[ComponentSpec]], list[ComponentSpec]]) -> DesiredPipeline:
        """Read a stage's components, change them with ``edit`` and write them, as one step: changes
        made at the same time (by one user or many) each see the one before, and none is lost. ``edit``
        may raise to refuse the change (nothing is written)."""
        with self.lock:
            components = edit(self.components(stage))
            if stage == filtering_stage(self.desired.spec):
                return self.set_filters(components)
            return self._change(stage, components)

    def set_filters(self, components: list[ComponentSpec]) -> DesiredPipeline:
        """The filter stage's new components (users' filters among them). Their outputs reach the
        distribute stage's ``deliver`` sink first, so no match is judged before its route is known."""
        with self.lock:
            stage, delivering = filtering_stage(self.desired.spec), delivering_stage(self.desired.spec)
            self.validate(stage, components)  # refused here, before anything changes
            routed = route_deliveries(with_stage(self.desired.spec, stage, components))
            # Both changes must fit before the first is made: a refused filter leaves no route behind.
            self.fits(self.desired.model_copy(update={"spec": routed, "version": self.desired.version + 2}))
            if routed.stage(delivering) != self.desired.spec.stage(delivering):
                self._change(delivering, stage_component_specs(routed, delivering))
            return self._change(stage, components)

    def try_filter(self, expression: str, limit: int, sample: int) -> dict[str, Any]:
        """Judge the latest stored alerts with ``expression`` (see ``starling.control.trial``)."""
        if self.store_location is None:
            raise StoreError("this controller has no store to read")
        location = pipeline_store(self.desired.spec, self.store_location.parent) or self.store_location
        return self.trials.run(try_filter_on_store, location, expression, limit, sample)

    def set_replicas(self, stage: str, replicas: int) -> DesiredPipeline:
        return self._change(stage, replicas=replicas)

    def set_autoscaling(self, stage: str, policy: AutoscalePolicy | None) -> DesiredPipeline:
        return self._change(stage, autoscaling=policy)
