"""Users' own access to Kafka: a principal per user (SASL/SCRAM), ACLs on its own topics only, quotas.

A user's filters write to ``<prefix>.user.<owner>.<filter>`` (``user_outputs``). Giving the user Kafka
access makes ``User:<principal_prefix><owner>`` on the users' listener (``[kafka.users]``): SCRAM users are
the whole cluster's, so users' principals live in a namespace of their own, which no admin or other
principal of the cluster may be in (refused). In this order:

- client quotas: ``consumer_byte_rate`` and ``producer_byte_rate`` from the operator's quotas;
- ACLs (any the principal had are taken away first): READ and DESCRIBE on the topics prefixed
  ``<prefix>.user.<owner>.``, READ on the consumer groups prefixed ``<owner>.``. The broker refuses
  whatever no ACL allows (``allow.everyone.if.no.acl.found`` false), so the user neither sees nor reads
  the pipeline's topics or another user's;
- a SCRAM credential with a new random password, each time (so asking again rotates it): made here,
  returned once, never stored or logged here; Kafka keeps only its salted hash.

User names cannot hold a dot, so no user's prefixes cover another's. One change of access at a time:
another asked meanwhile is refused (429), so a slow broker holds no request thread waiting. The
pipeline's own clients use another listener (internal in a deployment), and the controller acts as the
broker's admin (a super user), whose password comes from a file or the environment, never from the
pipeline description.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# The admin module defines these in private submodules and re-exports them without __all__.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from starling.control.quotas import Quotas
from starling.control.user_outputs import user_topic_prefix
from starling.core.kafka_settings import KafkaUserAccess
from starling.core.spec import PipelineSpec
from starling.errors import StarlingError
from starling.transport.kafka.client_quotas import QUOTA_KEYS, ClientQuotaError, set_user_quotas

log = logging.getLogger("starling.controller")

ADMIN_PASSWORD_ENV = "STARLING_KAFKA_ADMIN_PASSWORD"
SCRAM_ITERATIONS = 8192
_TIMEOUT_S = 15.0
# One change of Kafka access at a time: two rotations at once would each answer a password, one dead.
_CHANGES = threading.Lock()


class KafkaAccessUnavailableError(StarlingError):
    """This controller gives users no Kafka access (no ``[kafka.users]`` or no admin password), or not this
    user."""


class KafkaAdminError(StarlingError):
    """Kafka could not be reached, or refused what the admin asked."""


class KafkaBusyError(StarlingError):
    """Another change of Kafka access is being made at this moment."""


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """What a user's client needs, the password aside."""

    username: str
    bootstrap_servers: str
    security_protocol: str
    mechanism: str
    topic_prefix: str
    group_prefix: str
    consumer_byte_rate: int | None
    producer_byte_rate: int | None

    def client_config(self) -> dict[str, str]:
        """librdkafka settings for the user's client (add ``sasl.password``)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "sasl.mechanisms": self.mechanism,
            "sasl.username": self.username,
        }


def _users(spec: PipelineSpec) -> KafkaUserAccess:
    if spec.kafka.users is None:
        raise KafkaAccessUnavailableError(
            "Kafka access for users is not configured here (the pipeline's [kafka.users]); ask the operator"
        )
    return spec.kafka.users


def principal_name(spec: PipelineSpec, owner: str) -> str:
    """``owner``'s Kafka principal (its name, without ``User:``), in the users' namespace."""
    users = _users(spec)
    others = {users.admin_user, spec.kafka.client.get("sasl.username")}
    if any(name and name.startswith(users.principal_prefix) for name in others):
        raise KafkaAccessUnavailableError(
            "the users' Kafka principals would share a name with the admin or the pipeline's own: ask the "
            "operator to set [kafka.users] principal_prefix apart from them"
        )
    return f"{users.principal_prefix}{owner}"


def user_access(spec: PipelineSpec, owner: str, quotas: Quotas) -> KafkaAccess:
    users = _users(spec)
    group_prefix = f"{owner}."
    if spec.kafka.group("").startswith(group_prefix):
        raise KafkaAccessUnavailableError(f"the user {owner!r} would share the pipeline's consumer groups")
    return KafkaAccess(
        username=principal_name(spec, owner),
        bootstrap_servers=users.bootstrap_servers,
        security_protocol=users.security_protocol,
        mechanism=users.mechanism,
        topic_prefix=user_topic_prefix(spec, owner),
        group_prefix=group_prefix,
        consumer_byte_rate=quotas.kafka_consumer_byte_rate,
        producer_byte_rate=quotas.kafka_producer_byte_rate,
    )


def admin_config(users: KafkaUserAccess) -> dict[str, Any]:
    """The admin's librdkafka settings, its password read now from its file or the environment."""
    password = os.environ.get(ADMIN_PASSWORD_ENV, "")
    if users.admin_password_file:
        try:
            password = Path(users.admin_password_file).read_text().strip()
        except OSError as exc:
            raise KafkaAccessUnavailableError(f"cannot read the Kafka admin's password file: {exc}") from exc
    if not password:
        raise KafkaAccessUnavailableError(
            f"Kafka access for users is not configured here: no admin password ({ADMIN_PASSWORD_ENV})"
        )
    return {
        "bootstrap.servers": users.bootstrap_servers,
        "security.protocol": users.security_protocol,
        "sasl.mechanisms": users.mechanism,
        "sasl.username": users.admin_user,
        "sasl.password": password,
        **users.admin_client,
    }


def acl_bindings(access: KafkaAccess) -> list[AclBinding]:
    principal = f"User:{access.username}"
    allow = AclPermissionType.ALLOW
    prefixed = ResourcePatternType.PREFIXED
    topics, groups = access.topic_prefix, access.group_prefix
    return [
        AclBinding(ResourceType.TOPIC, topics, prefixed, principal, "*", AclOperation.READ, allow),
        AclBinding(ResourceType.TOPIC, topics, prefixed, principal, "*", AclOperation.DESCRIBE, allow),
        AclBinding(ResourceType.GROUP, groups, prefixed, principal, "*", AclOperation.READ, allow),
    ]


def _mechanism(users: KafkaUserAccess) -> ScramMechanism:
    sha512 = users.mechanism == "SCRAM-SHA-512"
    return ScramMechanism.SCRAM_SHA_512 if sha512 else ScramMechanism.SCRAM_SHA_256


def _settle(futures: Iterable[Future[Any]]) -> list[Any]:
    """Every future's result; a Kafka error as a ``KafkaAdminError`` (its text names no secret)."""
    try:
        return [future.result(timeout=_TIMEOUT_S + 5) for future in futures]
    except KafkaException as exc:
        raise KafkaAdminError(f"Kafka refused: {exc.args[0]}") from exc
    except TimeoutError as exc:
        raise KafkaAdminError("Kafka did not answer in time") from exc


def _admin(config: dict[str, Any]) -> AdminClient:
    return AdminClient(config)


@contextmanager
def _changing(wait_s: float = 0.0) -> Iterator[None]:
    """The one change of Kafka access at a time. A user's request asked meanwhile is refused, not queued
    (``wait_s`` 0): a slow broker must not hold the controller's request threads. The controller's own
    changes (a session's principal) wait their turn."""
    acquired = _CHANGES.acquire(timeout=wait_s) if wait_s > 0 else _CHANGES.acquire(blocking=False)
    if not acquired:
        raise KafkaBusyError("another change of Kafka access is being made; try again in a few seconds")
    try:
        yield
    finally:
        _CHANGES.release()


def grant(spec: PipelineSpec, owner: str, quotas: Quotas) -> tuple[KafkaAccess, str]:
    """Give ``owner`` its quotas, its ACLs and a new password (replacing any it had); returns both."""
    access = user_access(spec, owner, quotas)
    rates = {"consumer_byte_rate": access.consumer_byte_rate, "producer_byte_rate": access.producer_byte_rate}
    password = grant_principal(spec, access.username, acl_bindings(access), rates)
    log.info(f"Kafka credential of User:{access.username} made (or rotated), with its ACLs and quotas")
    return access, password


def grant_principal(
    spec: PipelineSpec,
    principal: str,
    bindings: list[AclBinding],
    rates: Mapping[str, float | None],
    wait_s: float = 0.0,
) -> str:
    """Give ``principal`` (of the users' namespace) its quotas, exactly ``bindings`` as its ACLs (any it had
    go first) and a new random password, which is returned."""
    users = _users(spec)
    config = admin_config(users)
    password = secrets.token_urlsafe(24)
    with _changing(wait_s):
        try:
            set_user_quotas(config, principal, rates, _TIMEOUT_S)
        except ClientQuotaError as exc:
            raise KafkaAdminError(str(exc)) from exc
        admin = _admin(config)
        _settle(admin.delete_acls([_every_acl_of(principal)], request_timeout=_TIMEOUT_S).values())
        _settle(admin.create_acls(bindings, request_timeout=_TIMEOUT_S).values())
        credential = ScramCredentialInfo(_mechanism(users), SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(principal, credential, password.encode())
        _settle(admin.alter_user_scram_credentials([upsert], request_timeout=_TIMEOUT_S).values())
    return password


def _every_acl_of(principal: str) -> AclBindingFilter:
    """Every ACL of the principal (None: any name, any host): one of the users' namespace only."""
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        f"User:{principal}",
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def has_credential(spec: PipelineSpec, owner: str) -> bool:
    return has_credential_of(spec, principal_name(spec, owner))


def has_credential_of(spec: PipelineSpec, principal: str) -> bool:
    admin = _admin(admin_config(_users(spec)))
    futures = admin.describe_user_scram_credentials([principal], request_timeout=_TIMEOUT_S)
    try:
        _settle(futures.values() if isinstance(futures, dict) else [futures])
    except KafkaAdminError as exc:
        if _not_found(exc):
            return False
        raise
    return True


def _not_found(exc: KafkaAdminError) -> bool:
    cause = exc.__cause__
    error = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
    return isinstance(error, KafkaError) and error.code() == KafkaError.RESOURCE_NOT_FOUND


def revoke(spec: PipelineSpec, owner: str) -> bool:
    """Take ``owner``'s credential, ACLs and quotas away; False if it had no credential."""
    principal = principal_name(spec, owner)
    had = revoke_principal(spec, principal)
    if had:
        log.info(f"Kafka credential of User:{principal} revoked, with its ACLs and quotas")
    return had


def revoke_principal(spec: PipelineSpec, principal: str, wait_s: float = 0.0) -> bool:
    """Take ``principal``'s credential, ACLs and quotas away; False if it had no credential."""
    users = _users(spec)
    config = admin_config(users)
    with _changing(wait_s):
        admin = _admin(config)
        deletion = UserScramCredentialDeletion(principal, _mechanism(users))
        try:
            _settle(admin.alter_user_scram_credentials([deletion], request_timeout=_TIMEOUT_S).values())
            had = True
        except KafkaAdminError as exc:
            if not _not_found(exc):
                raise
            had = False
        _settle(admin.delete_acls([_every_acl_of(principal)], request_timeout=_TIMEOUT_S).values())
        try:
            set_user_quotas(config, principal, dict.fromkeys(QUOTA_KEYS), _TIMEOUT_S)
        except ClientQuotaError as exc:
            raise KafkaAdminError(str(exc)) from exc
    return had
