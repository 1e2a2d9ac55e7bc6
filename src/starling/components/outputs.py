"""Where a filter's matches go: one or several outputs per filter, delivered by the distribute stage.

The one model the kinds of components share: an ``adql`` filter declares its outputs, the ``deliver``
sink (named :data:`DELIVER` in every pipeline) sends them, and pipeline assembly routes one to the other.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

# The name of the distribute stage's sink that delivers the filters' outputs.
DELIVER = "deliver"


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaOutput(_Output):
    """A Kafka topic of the filter's own (default ``<prefix>.filter.<filter name>``)."""

    type: Literal["kafka"]
    topic: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    format: Literal["avro", "json"] = Field("avro", description="Avro (schema starling.v1.alert) or JSON")
    cutouts: bool = Field(False, description="include the cutouts (Avro: bytes; JSON: base64)")


class WebhookOutput(_Output):
    """An HTTP POST of JSON per match, signed, retried with back-off; failures kept for redelivery."""

    type: Literal["webhook"]
    url: HttpUrl
    secret: str | None = Field(
        None, min_length=16, description="HMAC-SHA256 key: the X-Starling-Signature header signs the body"
    )
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(5, ge=1, le=20)


class VOEventOutput(_Output):
    """VOEvent 2.0 packets, one per match, as files (and on a topic when ``topic`` is set)."""

    type: Literal["voevent"]
    role: Literal["observation", "test"] = "observation"
    topic: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")


class FilesOutput(_Output):
    """JSON lines and Avro files under the output directory, as the ``files`` sink writes them."""

    type: Literal["files"]


Output = Annotated[KafkaOutput | WebhookOutput | VOEventOutput | FilesOutput, Field(discriminator="type")]
