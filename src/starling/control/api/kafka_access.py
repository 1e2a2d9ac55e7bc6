"""A user's own Kafka access: read your filters' topics from Kafka yourself, as your own principal.

``POST /kafka-credentials`` makes (or rotates) your SCRAM credential and answers it once, with where and
how to connect, which topics you may read and which consumer groups you may use; ``GET`` says whether you
have one (never the password); ``DELETE`` takes it away. See ``starling.control.kafka_users``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from starling.control.api.auth import ANYONE, Anyone
from starling.control.api.common import AUTH_RESPONSES, Responses, problem, refuse
from starling.control.api.deps import Control
from starling.control.kafka_users import (
    KafkaAccess,
    KafkaAccessUnavailableError,
    KafkaAdminError,
    KafkaBusyError,
    grant,
    has_credential,
    revoke,
    user_access,
)


class KafkaAccessView(BaseModel):
    username: str = Field(description="your principal is User:<username> (a namespace of users' own)")
    bootstrap_servers: str = Field(description="the users' listener")
    security_protocol: str
    mechanism: str = Field(description="the SASL mechanism")
    topic_prefix: str = Field(description="you may read (and describe) the topics starting with it")
    group_prefix: str = Field(description="your consumer groups' names start with it")
    consumer_byte_rate: int | None = Field(description="bytes/s your clients may read (null: no quota)")
    producer_byte_rate: int | None = Field(description="bytes/s your clients may write (null: no quota)")
    client: dict[str, str] = Field(description="librdkafka settings for your client; add sasl.password")

    @classmethod
    def of(cls, access: KafkaAccess) -> KafkaAccessView:
        return cls(
            username=access.username,
            bootstrap_servers=access.bootstrap_servers,
            security_protocol=access.security_protocol,
            mechanism=access.mechanism,
            topic_prefix=access.topic_prefix,
            group_prefix=access.group_prefix,
            consumer_byte_rate=access.consumer_byte_rate,
            producer_byte_rate=access.producer_byte_rate,
            client=access.client_config(),
        )


class KafkaAccessState(KafkaAccessView):
    has_credential: bool = Field(description="whether you hold a credential now")


class KafkaCredentials(KafkaAccessView):
    password: str = Field(description="shown this once; Kafka keeps only its salted SCRAM hash")


class KafkaCredentialRevoked(BaseModel):
    username: str
    revoked: bool


UNAVAILABLE: Responses = {
    409: problem("Kafka access for users is not configured on this controller"),
    429: problem("another change of Kafka access is being made: try again in a few seconds"),
    503: problem("Kafka did not answer, or refused the controller's admin"),
}

router = APIRouter(responses=AUTH_RESPONSES, tags=["kafka"])


@contextmanager
def _kafka_refusals() -> Iterator[None]:
    try:
        yield
    except KafkaAccessUnavailableError as exc:
        refuse(409, str(exc))
    except KafkaAdminError as exc:
        refuse(503, str(exc))
    except KafkaBusyError as exc:
        refuse(429, str(exc))


@router.get("/kafka-credentials", responses=UNAVAILABLE, dependencies=ANYONE)
def describe_kafka_access(controller: Control, who: Anyone) -> KafkaAccessState:
    """Your Kafka access: where and how to connect, what you may read, whether you hold a credential."""
    spec = controller.desired.spec
    with _kafka_refusals():
        access = user_access(spec, who.user, controller.quotas)
        held = has_credential(spec, who.user)
    return KafkaAccessState(**KafkaAccessView.of(access).model_dump(), has_credential=held)


@router.post("/kafka-credentials", responses=UNAVAILABLE, dependencies=ANYONE)
def make_kafka_credentials(controller: Control, who: Anyone, response: Response) -> KafkaCredentials:
    """A new password for your Kafka principal (the previous one stops working), shown this once."""
    with _kafka_refusals():
        access, password = grant(controller.desired.spec, who.user, controller.quotas)
    response.headers["Cache-Control"] = "no-store"
    return KafkaCredentials(**KafkaAccessView.of(access).model_dump(), password=password)


@router.delete(
    "/kafka-credentials",
    responses={**UNAVAILABLE, 404: problem("you hold no Kafka credential")},
    dependencies=ANYONE,
)
def revoke_kafka_credentials(controller: Control, who: Anyone) -> KafkaCredentialRevoked:
    """Take your Kafka credential away, with its ACLs and quotas."""
    with _kafka_refusals():
        had = revoke(controller.desired.spec, who.user)
    if not had:
        refuse(404, "you hold no Kafka credential")
    return KafkaCredentialRevoked(username=who.user, revoked=True)
