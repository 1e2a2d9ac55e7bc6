"""A user's session reaches Kafka as a principal of its own, with ACLs for just what it does.

A session's stage (a Starling component, or a container image on Kubernetes) is the user's code. It must not
run with the pipeline's access, which reads and writes every topic. When the pipeline gives users Kafka
access (``[kafka.users]``: a SASL/SCRAM listener and its admin), each session gets
``User:<principal_prefix><owner>.<stage>`` (a user name holds no dot, so no user's principal is a session's)
with a new random password, made when its stage is added and deleted when it is removed, and these ACLs, all
on literal names:

- READ and DESCRIBE on the topic it reads (what the chain's stage it sits beside writes);
- READ and DESCRIBE on its own consumer group;
- a Starling component's stage: WRITE and DESCRIBE on the dead-letter topic (an alert its component cannot
  take goes there, with the reason, as in every stage). A container gets none: its letters would be requeued
  to the topic they name, by the operator, as the pipeline;
- a container's output: READ, WRITE and DESCRIBE on its own topic, under its owner's prefix (so the owner
  reads it with their own Kafka access too), within the operator's producer quota for users.

Kafka refuses everything else (``allow.everyone.if.no.acl.found`` false): the session can neither read
another topic nor join another group, nor create or delete anything. Its identity (the users' listener, the
name and the password) reaches only its workers: a file of the controller's run directory, or a Secret on
Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass

# The admin module defines these in private submodules and re-exports them without __all__.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from starling.control.kafka_users import (
    grant_principal,
    has_credential_of,
    principal_name,
    revoke_principal,
)
from starling.control.user_outputs import user_topic_prefix
from starling.core.spec import PipelineSpec
from starling.transport.kafka.client_quotas import QUOTA_KEYS

# The controller's own change of access waits its turn behind a user's (which takes a few seconds).
_WAIT_S = 60.0


@dataclass(frozen=True)
class SessionTopics:
    """What a session's stage reads and writes on Kafka."""

    reads: str
    group: str
    dead_letters: str | None = None
    writes: str | None = None


def session_principal(spec: PipelineSpec, owner: str, stage: str) -> str:
    return f"{principal_name(spec, owner)}.{stage}"


def container_output(spec: PipelineSpec, owner: str, stage: str) -> str:
    """A container session's output topic: under its owner's prefix, which only they may read."""
    return f"{user_topic_prefix(spec, owner)}{stage}"


def session_acls(principal: str, topics: SessionTopics) -> list[AclBinding]:
    user = f"User:{principal}"
    allow, literal = AclPermissionType.ALLOW, ResourcePatternType.LITERAL

    def acl(kind: ResourceType, name: str, operation: AclOperation) -> AclBinding:
        return AclBinding(kind, name, literal, user, "*", operation, allow)

    read, write, describe = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
    bindings = [
        acl(ResourceType.TOPIC, topics.reads, read),
        acl(ResourceType.TOPIC, topics.reads, describe),
        acl(ResourceType.GROUP, topics.group, read),
        acl(ResourceType.GROUP, topics.group, describe),
    ]
    if topics.dead_letters:
        bindings += [acl(ResourceType.TOPIC, topics.dead_letters, op) for op in (write, describe)]
    if topics.writes:
        bindings += [acl(ResourceType.TOPIC, topics.writes, op) for op in (read, write, describe)]
    return bindings


def grant_session(
    spec: PipelineSpec,
    owner: str,
    stage: str,
    topics: SessionTopics,
    producer_byte_rate: int | None = None,
) -> dict[str, str] | None:
    """The session's own identity (librdkafka settings with its password), its ACLs made; None when the
    pipeline gives users no Kafka access (then a session's stage runs with the pipeline's)."""
    users = spec.kafka.users
    if users is None:
        return None
    principal = session_principal(spec, owner, stage)
    # It reads at the rate its cores allow; what it writes (a container's topic) is within the users' quota.
    rates: dict[str, float | None] = dict.fromkeys(QUOTA_KEYS)
    rates["producer_byte_rate"] = producer_byte_rate
    password = grant_principal(spec, principal, session_acls(principal, topics), rates, wait_s=_WAIT_S)
    return {
        "bootstrap.servers": users.bootstrap_servers,
        "security.protocol": users.security_protocol,
        "sasl.mechanisms": users.mechanism,
        "sasl.username": principal,
        "sasl.password": password,
    }


def has_principal(spec: PipelineSpec, owner: str, stage: str) -> bool:
    """Whether the session's principal is still there (a removal that failed half-way leaves it)."""
    if spec.kafka.users is None:
        return False
    return has_credential_of(spec, session_principal(spec, owner, stage))


def revoke_session(spec: PipelineSpec, owner: str, stage: str) -> None:
    """The session's credential and ACLs deleted (nothing to do without ``[kafka.users]``)."""
    if spec.kafka.users is not None:
        revoke_principal(spec, session_principal(spec, owner, stage), wait_s=_WAIT_S)
