"""The controller as users' sessions see it (``starling.control.sessions``): its pipeline and its checks, and
a session's stage (a Starling component, or a container image where the backend runs containers) added
beside the chain and removed, each with a Kafka principal of its own when the pipeline gives users Kafka
access (``starling.control.session_kafka``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from starling.control import reshape
from starling.control.session_kafka import SessionTopics, container_output, grant_session, revoke_session
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources
from starling.core.stages import output_topic
from starling.deploy.sessions import ContainerRun
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.handover import end_offsets, set_group_position
from starling.vo.execbroker.ledger import Capacity

log = logging.getLogger("starling.sessions")


class ControllerHost:
    def __init__(self, controller: reshape.Controller) -> None:
        self.controller = controller

    @property
    def pipeline(self) -> PipelineSpec:
        return self.controller.desired.spec

    @property
    def runs_containers(self) -> bool:
        return self.controller.backend.runs_containers

    @property
    def gives_identities(self) -> bool:
        return self.pipeline.kafka.users is not None

    def quota_capacity(self) -> Capacity | None:
        """The Kubernetes namespace's quota, less what it holds already (None: no quota; the machine's)."""
        return self.controller.backend.quota_capacity()

    def validate_components(self, components: list[ComponentSpec]) -> None:
        self.controller.validate("session", components, current=[])

    def add_session_stage(
        self, name: str, owner: str, beside: str, components: list[ComponentSpec], resources: StageResources
    ) -> None:
        own = self._identity(name, owner, beside, writes=None)
        self._or_revoked(
            name,
            owner,
            lambda: reshape.add_branch(
                self.controller, name, beside, components, resources=resources, own_principal=own
            ),
        )

    def add_session_container(self, run: ContainerRun, owner: str, beside: str) -> None:
        """``run``'s topics are set here: it reads what ``beside`` writes, from now on, and writes a topic
        of its owner's, made first (its principal may create nothing)."""
        kafka = self.pipeline.kafka
        reads = output_topic(self.pipeline, beside)
        writes = container_output(self.pipeline, owner, run.stage)
        run = dataclasses.replace(run, reads=reads, writes=writes, group=kafka.group(run.stage))
        ensure_topics(kafka, [run.writes])
        set_group_position(kafka, run.group, end_offsets(kafka, [reads]))
        if not self._identity(run.stage, owner, beside, writes=run.writes):
            raise RuntimeError("a container needs a Kafka principal of its own: [kafka.users] is not set")
        self._or_revoked(run.stage, owner, lambda: self.controller.backend.start_container(run))

    def remove_session(self, name: str, owner: str) -> None:
        """Its stage or container removed, then its identity and its principal."""
        if name in [stage.name for stage in self.pipeline.stages]:
            reshape.remove_stage(self.controller, name)
        self.controller.backend.remove_container(name)
        self.controller.backend.set_identity(name, None)
        revoke_session(self.pipeline, owner, name)

    def has_session(self, name: str) -> bool:
        in_pipeline = name in [stage.name for stage in self.pipeline.stages]
        return in_pipeline or self.controller.backend.has_container(name)

    def _identity(self, name: str, owner: str, beside: str, writes: str | None) -> bool:
        """The session's principal made and handed to its stage; False without ``[kafka.users]``."""
        spec = self.pipeline
        topics = SessionTopics(
            reads=output_topic(spec, beside),
            group=spec.kafka.group(name),
            dead_letters=spec.kafka.dead_letter_topic,
            writes=writes,
        )
        identity = grant_session(spec, owner, name, topics)
        if identity is None:
            return False
        self.controller.backend.set_identity(name, identity)
        return True

    def _or_revoked(self, name: str, owner: str, start: Callable[[], object]) -> None:
        try:
            start()
        except Exception:  # the principal goes with the stage that was not made
            self.controller.backend.set_identity(name, None)
            revoke_session(self.pipeline, owner, name)
            raise
