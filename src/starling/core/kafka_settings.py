"""How a pipeline uses Kafka between its stages: servers, topic names, groups, client settings.

Part of the pipeline description (``[kafka]``), so it lives with it; the clients built from it are in
``starling.transport.kafka``. The ``client`` table is passed through to librdkafka unchanged, so
SASL/SCRAM and TLS work as usual::

    [kafka.client]
    "security.protocol" = "SASL_SSL"
    "sasl.mechanisms" = "SCRAM-SHA-512"
    "sasl.username" = "..."
    "sasl.password" = "..."
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_BOOTSTRAP = "127.0.0.1:39092"


def _default_bootstrap() -> str:
    return os.environ.get("STARLING_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP


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
    client: dict[str, str] = Field(default_factory=dict, description="librdkafka settings passed through")

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
