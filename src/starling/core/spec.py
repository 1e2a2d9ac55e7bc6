"""The description of a pipeline: which components, in which order, with which configs.

The same description runs embedded (every stage in one process) or, later, with a transport between
stages; it names components, never transports. It is written in TOML::

    batch_size = 500

    [source]
    use = "replay"
    config = { paths = ["alerts/"] }

    [[annotators]]
    use = "history-summary"

    [[filters]]
    use = "threshold"
    name = "bright"
    config = { max_mag = 18.5 }

    [[sinks]]
    use = "store"
    config = { path = "starling.db" }

    [kafka]                       # used when the stages run as services over Kafka
    bootstrap_servers = "127.0.0.1:39092"
    input_topics = ["^ztf_20261122_programid1$"]

A JSON file of the same structure is read too (``starling up`` hands its workers one). The controller
writes its workers' file with one more key, ``pipeline_version``: the version of its desired pipeline
that the file holds (:func:`versioned_json`, :func:`file_version`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from starling.core.kafka_settings import KafkaSettings
from starling.core.registry import format_validation_error
from starling.errors import ConfigError

# A component's name becomes a file name, a folder, a topic suffix and a metric label: letters,
# digits and ``_.-``, starting with a letter or digit (so never ``..``), at most 128 characters.
COMPONENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


# The key of the desired pipeline's version in a file the controller writes. A worker starting from the
# file reports it as the version it runs, so the controller can tell a change live on a replica that
# started after the change (and never reached it by a push).
VERSION_KEY = "pipeline_version"


class ComponentSpec(BaseModel):
    """One component: the installed component to ``use``, an instance ``name``, and its config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    use: str = Field(min_length=1)
    name: str | None = Field(None, pattern=COMPONENT_NAME_PATTERN)
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def instance_name(self) -> str:
        return self.name or self.use


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(500, ge=1, le=100_000)
    source: ComponentSpec
    annotators: list[ComponentSpec] = Field(default_factory=list)
    filters: list[ComponentSpec] = Field(default_factory=list)
    sinks: list[ComponentSpec] = Field(default_factory=list)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @model_validator(mode="after")
    def _names_are_unique(self) -> PipelineSpec:
        names = [c.instance_name for c in (*self.annotators, *self.filters, *self.sinks)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"component names must be unique; repeated: {', '.join(duplicates)} (set 'name')"
            )
        return self

    @classmethod
    def from_file(cls, path: Path) -> PipelineSpec:
        """Read a pipeline description from TOML, or JSON when the name ends in ``.json``."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read pipeline file {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            kind = "JSON" if path.suffix == ".json" else "TOML"
            raise ConfigError(f"{path}: not valid {kind}: {exc}") from exc
        if isinstance(data, dict):
            data.pop(VERSION_KEY, None)  # the file's, not the pipeline's (see ``file_version``)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, str(path))) from exc


def versioned_json(spec: PipelineSpec, version: int | None) -> str:
    """The pipeline as JSON, carrying the controller's ``version`` of it (none: left out)."""
    data = spec.model_dump(mode="json")
    return json.dumps(data if version is None else {VERSION_KEY: version, **data}, indent=2)


def file_version(path: Path) -> int | None:
    """The controller's version of the pipeline a file holds (None: a file no controller wrote, or one
    that cannot be read: then ``PipelineSpec.from_file`` tells why)."""
    if path.suffix != ".json":
        return None
    try:
        version = json.loads(path.read_text()).get(VERSION_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
