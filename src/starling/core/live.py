"""What makes a runtime controllable while it runs: live component changes, pause, drain, stop.

Both the Kafka stage worker and the embedded pipeline are :class:`LiveRuntime` s, so one control
API (``starling.control.api``) serves either. Changes are validated when proposed (a wrong one
is refused at once, with the field named) and applied by the runtime's own loop between two
batches, so every alert is processed by exactly the components present at its time.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starling.core.bodies import BodyResolver
from starling.core.chain import Chain, StageCounts
from starling.core.component import Component, RunContext
from starling.core.deadletter import DeadLetterOutput
from starling.core.outage import Backoff
from starling.core.registry import build_component
from starling.core.secrets import redact_secrets
from starling.core.spec import KIND_FIELDS, KIND_OF_FIELD, ComponentSpec, PipelineSpec, StageSpec
from starling.errors import ConfigError

log = logging.getLogger("starling.core.live")


@dataclass(frozen=True)
class _Proposal:
    """A component list accepted, waiting for the next batch boundary."""

    specs: list[ComponentSpec]
    components: list[Component[Any]]
    version: int
    pipeline_version: int | None


class LiveRuntime(ABC):
    stage: str
    chain: Chain
    output_dir: Path
    dead_letters: DeadLetterOutput
    spec: PipelineSpec

    # What stands in for the stored bodies a config refers to (a watchlist's targets): set before the
    # first build; the default refuses a reference, having no controller to fetch it from.
    bodies: BodyResolver = BodyResolver()

    def init_live(self, specs: list[ComponentSpec]) -> None:
        self.component_specs: list[ComponentSpec] = list(specs)
        self.stats = self.chain.stats
        # Two versions: ``config_version`` counts this runtime's own changes (from 1 at each start);
        # ``applied_pipeline_version`` is the controller's version of the running list, the same in
        # every replica and across restarts: what the controller compares to tell a change live.
        self.config_version = 1
        self.applied_pipeline_version: int | None = None
        self.config_history: list[dict[str, Any]] = [
            {"version": 1, "applied_at": time.time(), "pipeline_version": None}
        ]
        self.started_at = time.time()
        self._pending: _Proposal | None = None
        self._config_lock = threading.Lock()
        self._draining = threading.Event()
        self._drained = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._ready = threading.Event()
        self.backoff = Backoff()

    def started_from(self, pipeline_version: int | None) -> None:
        """Before it runs: the controller's version of the pipeline file the runtime was built from
        (None: a file no controller wrote)."""
        self.applied_pipeline_version = pipeline_version
        self.config_history[0]["pipeline_version"] = pipeline_version

    def _build(self, specs: list[ComponentSpec]) -> list[Component[Any]]:
        """Build and validate components (ConfigError if one is wrong), with the bodies their configs
        refer to. A stage may hold any kind but a source: sources feed the chain, they do not run in it."""
        built = [build_component(c.use, self.bodies.resolve(c.config), c.instance_name) for c in specs]
        sources = [c.name for c in built if c.kind == "source"]
        if sources:
            raise ConfigError(f"a source cannot run inside the chain: {sources}")
        return built

    def status(self) -> dict[str, Any]:
        """State, counts per component, and the configuration: what every runtime reports."""
        stats = self.stats
        counters = {component.name: component.counters() for component in list(self.chain.components)}
        return {
            "stage": self.stage,
            "state": self.state,
            "uptime_s": round(time.time() - self.started_at, 3),
            "messages_in": stats.messages_in,
            "alerts_in": stats.alerts_decoded,
            "cpu_s": round(stats.cpu_s, 4),
            "busy_s": round(stats.busy_s, 4),
            "waits_s": {
                "acknowledgements": round(stats.ack_wait_s, 4),
                "fetch": round(stats.fetch_wait_s, 4),
            },
            "failed": sum(c.failed for c in stats.stages.values()),
            "dead_letters": len(self.dead_letters),
            "dead_letter_reasons": dict(self.dead_letters.by_reason.most_common(20)),
            "lag": self.lag(),
            "outage": self.backoff.status(),
            "outages_total": self.backoff.outages_total,
            "annotation_failures": dict(stats.annotation_failures.most_common(20)),
            "components": {
                name: {
                    "kind": c.kind,
                    "in": c.alerts_in,
                    "out": c.alerts_out,
                    "failed": c.failed,
                    "cpu_s": round(c.cpu_s, 4),
                    **counters.get(name, {}),
                }
                for name, c in stats.stages.items()
            },
            "config_version": self.config_version,
            "config_history": self.config_history[-20:],
            "pending_config_version": self.pending_version,
            "applied_pipeline_version": self.applied_pipeline_version,
            "pending_pipeline_version": self.pending_pipeline_version,
            "config": redact_secrets([c.model_dump() for c in self.component_specs]),
        }

    def lag(self) -> int | None:
        return None

    def propose_components(self, specs: list[ComponentSpec], pipeline_version: int | None = None) -> int:
        """Validate a new component list for this stage (ConfigError if it is wrong) and have it
        applied between two batches, replacing any list proposed before and not applied yet.
        Components whose description is unchanged are kept as they are (their state too).
        ``pipeline_version``: the controller's version the list comes from (None: not from the
        controller). Returns the configuration version that will carry it."""
        names = [c.instance_name for c in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"component names must be unique in a stage; got {names}")
        for spec in specs:  # fetched before the lock: the stream's thread never waits on a fetch
            self.bodies.resolve(spec.config)
        with self._config_lock:
            # Built on the list proposed before when there is one (it may be in the middle of being
            # applied): the components it brings are then the ones kept, never set up twice.
            base = (
                (self._pending.specs, self._pending.components)
                if self._pending
                else (self.component_specs, self.chain.components)
            )
            current = {spec.instance_name: (spec, component) for spec, component in zip(*base, strict=True)}
            built: list[Component[Any]] = []
            for spec in specs:
                kept = current.get(spec.instance_name)
                if kept is not None and kept[0] == spec:
                    built.append(kept[1])
                else:
                    built.extend(self._build([spec]))
            pending_version = (self._pending.version if self._pending else self.config_version) + 1
            self._pending = _Proposal(list(specs), built, pending_version, pipeline_version)
            return pending_version

    def patch_component(self, name: str, changes: dict[str, Any]) -> int:
        """Change some config fields of one component; validated against its own config model."""
        specs = self._pending.specs if self._pending else self.component_specs
        for index, spec in enumerate(specs):
            if spec.instance_name == name:
                updated = spec.model_copy(update={"config": {**spec.config, **changes}})
                return self.propose_components([*specs[:index], updated, *specs[index + 1 :]])
        raise KeyError(name)

    def _apply_pending(self) -> None:
        """On the consumer's thread, between batches: swap in the proposed components.

        The proposal stays pending until the swap, and the swap (lists and versions together) is
        made under the lock: a status read at any moment shows the new list either pending or
        applied, and a proposal made meanwhile sees consistent lists."""
        with self._config_lock:
            proposal = self._pending
        if proposal is None:
            return
        components, version = proposal.components, proposal.version
        context = RunContext(output_dir=self.output_dir, kafka=self.spec.kafka)
        previous = self.chain.components
        for component in components:
            if component not in previous:
                component.setup(context)
        for component in components:
            self.stats.stages.setdefault(component.name, StageCounts(component.kind))
        with self._config_lock:
            if self._pending is proposal:  # else a newer one came meanwhile, and waits its turn
                self._pending = None
            self.chain.components = components
            self.component_specs = proposal.specs
            self.config_version = version
            # A list changed on the worker itself (no pipeline version) is no version of the controller's.
            self.applied_pipeline_version = proposal.pipeline_version
            self.config_history.append(
                {"version": version, "applied_at": time.time(), "pipeline_version": proposal.pipeline_version}
            )
        self.bodies.keep_only([spec.config for spec in proposal.specs])
        for component in previous:
            if component not in components:
                component.flush()
                component.close()
        log.info(
            "%s: configuration version %d (pipeline version %s) applied: %s",
            self.stage,
            version,
            proposal.pipeline_version,
            [c.name for c in components],
        )

    @property
    def holding(self) -> bool:
        """Paused at a batch boundary, everything taken committed: where a stage may be rewired."""
        return False

    def rewire(self, spec: PipelineSpec, pipeline_version: int, start: dict[str, int]) -> None:
        """Take this runtime's place in ``spec`` (a stage worker's, at a reshape: ConfigError here)."""
        raise ConfigError(f"{self.stage} runs the whole pipeline: it has no place in a chain to change")

    def drain(self) -> None:
        """Finish the batch in hand, commit it, leave the group, and stop taking messages."""
        self._draining.set()

    @property
    def pending_version(self) -> int | None:
        with self._config_lock:
            return self._pending.version if self._pending else None

    @property
    def pending_pipeline_version(self) -> int | None:
        with self._config_lock:
            return self._pending.pipeline_version if self._pending else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def state(self) -> str:
        if self._drained.is_set():
            return "drained"
        if self._draining.is_set():
            return "draining"
        if self._stop.is_set():
            return "stopping"
        if self._paused.is_set():
            return "paused"
        return "running" if self.ready else "starting"

    def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()


def build_stage_components(
    stage: StageSpec, resolve: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[Component[Any]]:
    """A stage's components as its description lists them, each checked to be of the kind it is
    listed as (a sink listed among the filters is refused), with ``resolve`` putting in the bodies."""
    return [
        build_component(c.use, resolve(c.config), c.instance_name, KIND_OF_FIELD[field])
        for field in KIND_FIELDS
        for c in getattr(stage, field)
    ]
