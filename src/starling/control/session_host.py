"""The controller as users' sessions see it (``starling.control.sessions``): its pipeline and its checks, and
a session's stage (a Starling component, or a container image where the backend runs containers) added
beside the chain and removed, each with a Kafka principal of its own when the pipeline gives users Kafka
access (``starling.control.session_kafka``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

from starling.control import reshape
from starling.control.backends.processes import free_cpus
from starling.control.quotas import Quotas
from starling.control.session_kafka import (
    SessionTopics,
    container_output,
    grant_session,
    has_principal,
    revoke_session,
)
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources
from starling.core.stages import output_topic
from starling.deploy.sessions import ContainerRun, listener_ports
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.handover import end_offsets, set_group_position
from starling.vo.execbroker.ledger import Capacity

log = logging.getLogger("starling.sessions")


class ControllerHost:
    def __init__(self, controller: reshape.Controller, quotas: Quotas) -> None:
        self.controller = controller
        self.quotas = quotas  # the operator's for users: a container's output within its producer rate

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
        # Its own cores, chosen now and kept: a session added later never shares them.
        cpus = free_cpus(self.pipeline, sorted(os.sched_getaffinity(0)), resources.cores)
        pinned = resources.model_copy(update={"cpus": cpus})
        topics = self._topics(name, beside, writes=None)

        def start() -> None:
            own = self._identity(name, owner, topics)
            reshape.add_branch(self.controller, name, beside, components, resources=pinned, own_principal=own)

        self._or_revoked(name, owner, start)

    def add_session_container(self, run: ContainerRun, owner: str, beside: str) -> None:
        """``run``'s topics are set here: it reads what ``beside`` writes, from now on, and writes a topic
        of its owner's, made first (its principal may create nothing)."""
        kafka = self.pipeline.kafka
        writes = container_output(self.pipeline, owner, run.stage)
        topics = self._topics(run.stage, beside, writes=writes)
        users = self.pipeline.kafka.users
        ports = listener_ports(users.bootstrap_servers) if users else ()
        run = dataclasses.replace(
            run, reads=topics.reads, writes=writes, group=topics.group, kafka_ports=ports
        )

        def start() -> None:
            ensure_topics(kafka, [writes])
            set_group_position(kafka, run.group, end_offsets(kafka, [run.reads]))
            if not self._identity(run.stage, owner, topics):
                raise RuntimeError("a container needs a Kafka principal of its own: [kafka.users] is not set")
            self.controller.backend.start_container(run)

        self._or_revoked(run.stage, owner, start)

    def remove_session(self, name: str, owner: str) -> None:
        """Its stage or container removed (a stage drains, committing as its principal), then its identity
        and its principal."""
        if name in [stage.name for stage in self.pipeline.stages]:
            reshape.remove_stage(self.controller, name)
        self.controller.backend.remove_container(name)
        self._forget_identity(name, owner)

    def has_session(self, name: str, owner: str) -> bool:
        """Whether anything of the session is left: its stage, its container or its principal."""
        if name in [stage.name for stage in self.pipeline.stages]:
            return True
        return self.controller.backend.has_container(name) or has_principal(self.pipeline, owner, name)

    def _topics(self, name: str, beside: str, writes: str | None) -> SessionTopics:
        kafka = self.pipeline.kafka
        return SessionTopics(
            reads=output_topic(self.pipeline, beside),
            group=kafka.group(name),
            # A container's letters would be requeued by the operator to the topic they name: none.
            dead_letters=None if writes else kafka.dead_letter_topic,
            writes=writes,
        )

    def _identity(self, name: str, owner: str, topics: SessionTopics) -> bool:
        """The session's principal made and handed to its stage; False without ``[kafka.users]``."""
        rate = self.quotas.kafka_producer_byte_rate if topics.writes else None
        identity = grant_session(self.pipeline, owner, name, topics, producer_byte_rate=rate)
        if identity is None:
            return False
        self.controller.backend.set_identity(name, identity)
        return True

    def _forget_identity(self, name: str, owner: str) -> None:
        self.controller.backend.set_identity(name, None)
        revoke_session(self.pipeline, owner, name)

    def _or_revoked(self, name: str, owner: str, start: Callable[[], object]) -> None:
        try:
            start()
        except Exception:  # the principal goes with the stage that was not made
            try:
                self.controller.backend.remove_container(name)
                self._forget_identity(name, owner)
            except Exception:  # the session runner removes what is left, until it is gone
                log.exception("session stage %s: its principal could not be removed yet", name)
            raise
