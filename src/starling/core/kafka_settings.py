"""How a pipeline uses Kafka between its stages: servers, topic names, groups, client settings.

Part of the pipeline description (``[kafka]``), so it lives with it; the clients built from it are in
``starling.transport.kafka``. The ``client`` table is passed through to librdkafka unchanged, so
SASL/SCRAM and TLS work as usual::

    [kafka.client]
    "security.protocol" = "SASL_SSL"
    "sasl.mechanisms" = "SCRAM-SHA-512"
    "sasl.username" = "..."
    "sasl.password" = "..."

Users may read their own filters' topics from Kafka themselves: ``[kafka.users]`` names the listener they
connect to (SASL/SCRAM, one principal per user) and the administrator the controller gives them their
credentials, ACLs and quotas as (``starling.control.kafka_users``). Its password is never in the pipeline
description: a file (``admin_password_file``) or ``$STARLING_KAFKA_ADMIN_PASSWORD``::

    [kafka.users]
    bootstrap_servers = "kafka.example.org:9094"
    admin_password_file = "/run/secrets/kafka-admin"
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from starling.core.secrets import is_secret_key

DEFAULT_BOOTSTRAP = "127.0.0.1:39092"


def _default_bootstrap() -> str:
    return os.environ.get("STARLING_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP


class KafkaUserAccess(BaseModel):
    """Where users' own clients reach Kafka, and who the controller gives them their access as."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(
        min_length=1,
        description="the users' listener (SASL/SCRAM), as users' clients reach it; not the pipeline's own",
    )
    security_protocol: Literal["SASL_SSL", "SASL_PLAINTEXT"] = Field(
        "SASL_SSL", description="of the users' listener (SASL_PLAINTEXT only on a trusted network)"
    )
    mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    admin_user: str = Field("admin", min_length=1, description="a super user on that listener")
    principal_prefix: str = Field(
        "starling-u-",
        min_length=1,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="each user's Kafka principal is User:<principal_prefix><user>: a namespace of its "
        "own, so no user name can be the admin's or another principal of the cluster (SCRAM users are the "
        "cluster's)",
    )
    admin_password_file: str | None = Field(
        None,
        description="a file holding the admin's password (else $STARLING_KAFKA_ADMIN_PASSWORD); never the "
        "password itself",
    )
    admin_client: dict[str, str] = Field(
        default_factory=dict,
        description="more librdkafka settings for the admin's client (ssl.ca.location, ...); no secret here",
    )

    @field_validator("admin_client")
    @classmethod
    def _no_secret(cls, value: dict[str, str]) -> dict[str, str]:
        secret = sorted(k for k in value if is_secret_key(k))
        if secret:
            raise ValueError(f"{secret}: a secret is never in the pipeline description (admin_password_file)")
        return value


class KafkaSettings(BaseModel):
    """How a pipeline uses Kafka. Everything has a default that works with ``scripts/kafka start``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(default_factory=_default_bootstrap)
    topic_prefix: str = Field("starling", pattern=r"^[A-Za-z0-9._-]+$")
    input_topics: list[str] = Field(
        default_factory=list,
        description="survey topics the ingest stage reads (names, or regexes starting with ^, e.g. "
        "^ztf_20261122_programid1$); default <prefix>.raw, which `starling feed` fills",
    )
    start_from: Literal["earliest", "latest"] | int = Field(
        "earliest",
        description="where a new consumer group starts: earliest, latest, or a time (ms since epoch)",
    )
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)
    compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = Field(
        "none", description="producer compression; ZTF cutouts are gzipped already, so 'none' saves CPU"
    )
    batch_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="how long a stage waits to fill a batch before it takes the alerts it has: at low rates "
        "each stage holds an alert up to this long (a backlog or a visit fills batches at once)",
    )
    client: dict[str, str] = Field(default_factory=dict, description="librdkafka settings passed through")
    users: KafkaUserAccess | None = Field(
        None, description="users' own access to their topics (SASL/SCRAM); none: users have no Kafka access"
    )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    @property
    def raw_topic(self) -> str:
        return self.topic("raw")

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("dead-letters")

    def group(self, stage: str) -> str:
        return f"{self.topic_prefix}.{stage}"
