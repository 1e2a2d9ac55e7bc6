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
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from starling.core.chain import Chain, StageCounts
from starling.core.component import Component, RunContext
from starling.core.deadletter import DeadLetterOutput
from starling.core.outage import Backoff
from starling.core.secrets import redact_secrets
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.errors import ConfigError

log = logging.getLogger("starling.core.live")


class LiveRuntime(ABC):
    stage: str
    chain: Chain
    output_dir: Path
    dead_letters: DeadLetterOutput
    spec: PipelineSpec

    def init_live(self, specs: list[ComponentSpec]) -> None:
        self.component_specs: list[ComponentSpec] = list(specs)
        self.stats = self.chain.stats
        self.config_version = 1
        self.config_history: list[dict[str, Any]] = [{"version": 1, "applied_at": time.time()}]
        self.started_at = time.time()
        self._pending: tuple[list[ComponentSpec], list[Component[Any]], int] | None = None
        self._config_lock = threading.Lock()
        self._draining = threading.Event()
        self._drained = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._ready = threading.Event()
        self.backoff = Backoff()

    @abstractmethod
    def _build(self, specs: list[ComponentSpec]) -> list[Component[Any]]:
        """Build and validate components (ConfigError if one is wrong)."""

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
                    **counters.get(name, {}),
                }
                for name, c in stats.stages.items()
            },
            "config_version": self.config_version,
            "config_history": self.config_history[-20:],
            "pending_config_version": self.pending_version,
            "config": redact_secrets([c.model_dump() for c in self.component_specs]),
        }

    def lag(self) -> int | None:
        return None

    def propose_components(self, specs: list[ComponentSpec]) -> int:
        """Validate a new component list for this stage (ConfigError if it is wrong) and have it
        applied between two batches. Components whose description is unchanged are kept as they are
        (their state too). Returns the configuration version that will carry it."""
        names = [c.instance_name for c in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"component names must be unique in a stage; got {names}")
        with self._config_lock:
            current = {
                spec.instance_name: (spec, component)
                for spec, component in zip(self.component_specs, self.chain.components, strict=True)
            }
            built: list[Component[Any]] = []
            for spec in specs:
                kept = current.get(spec.instance_name)
                if kept is not None and kept[0] == spec:
                    built.append(kept[1])
                else:
                    built.extend(self._build([spec]))
            pending_version = (self._pending[2] if self._pending else self.config_version) + 1
            self._pending = (list(specs), built, pending_version)
            return pending_version

    def patch_component(self, name: str, changes: dict[str, Any]) -> int:
        """Change some config fields of one component; validated against its own config model."""
        specs = self._pending[0] if self._pending else self.component_specs
        for index, spec in enumerate(specs):
            if spec.instance_name == name:
                updated = spec.model_copy(update={"config": {**spec.config, **changes}})
                return self.propose_components([*specs[:index], updated, *specs[index + 1 :]])
        raise KeyError(name)

    def _apply_pending(self) -> None:
        """On the consumer's thread, between batches: swap in the proposed components."""
        with self._config_lock:
            if self._pending is None:
                return
            specs, components, version = self._pending
            self._pending = None
        context = RunContext(output_dir=self.output_dir, kafka=self.spec.kafka)
        previous = self.chain.components
        for component in components:
            if component not in previous:
                component.setup(context)
        for component in previous:
            if component not in components:
                component.flush()
                component.close()
        for component in components:
            self.stats.stages.setdefault(component.name, StageCounts(component.kind))
        self.chain.components = components
        self.component_specs = specs
        self.config_version = version
        self.config_history.append({"version": version, "applied_at": time.time()})
        log.info(
            "%s: configuration version %d applied: %s", self.stage, version, [c.name for c in components]
        )

    def drain(self) -> None:
        """Finish the batch in hand, commit it, leave the group, and stop taking messages."""
        self._draining.set()

    @property
    def pending_version(self) -> int | None:
        with self._config_lock:
            return self._pending[2] if self._pending else None

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
