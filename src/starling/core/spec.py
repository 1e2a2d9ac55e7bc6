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

The chain is cut into stages (each its own service when Kafka runs between them). A description
that names only ``annotators``, ``filters`` and ``sinks`` has the default three stages: ``ingest`` (the
annotators), ``filter`` and ``distribute``. A description may instead list its stages, in order::

    [[stages]]
    name = "ingest"
    annotators = [{ use = "history-summary" }]

    [[stages]]
    name = "classify"             # a stage of its own: it scales on its own
    annotators = [{ use = "lightcurve" }]

    [[stages]]
    name = "filter"
    filters = [{ use = "threshold", name = "bright", config = { max_mag = 18.5 } }]

    [[stages]]
    name = "distribute"
    sinks = [{ use = "store" }]

Within a stage the annotators run first, then the filters, then the sinks; the stages run in order.

A JSON file of the same structure is read too (``starling up`` hands its workers one). The controller
writes its workers' file with one more key, ``pipeline_version``: the version of its desired pipeline
that the file holds (:func:`versioned_json`, :func:`file_version`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from starling.core.component import ComponentKind
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


KindField = Literal["annotators", "filters", "sinks"]
KIND_FIELDS: tuple[KindField, ...] = ("annotators", "filters", "sinks")
KIND_OF_FIELD: dict[KindField, ComponentKind] = {
    "annotators": "annotator",
    "filters": "filter",
    "sinks": "sink",
}

# The stages of a description that lists none, and the kind of component each holds.
DEFAULT_STAGES: dict[str, KindField] = {"ingest": "annotators", "filter": "filters", "distribute": "sinks"}

# A stage's name becomes a consumer group, a topic suffix, a Deployment and a metric label.
STAGE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
# The name the embedded runtime reports as its stage: no stage of a chain may take it.
EMBEDDED_STAGE = "embedded"


class StageResources(BaseModel):
    """What each replica of a stage may use at most (a user's session: what was offered). The local
    backend pins it to ``cores`` CPUs and caps its data memory; Kubernetes sets requests and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cores: int = Field(ge=1, le=1024)
    memory_gib: float = Field(gt=0, le=4096)
    cpus: list[int] | None = Field(
        None,
        description="the CPUs the local backend pins it to, chosen when the stage is added (the machine's "
        "last ones no other stage holds) and kept, so that stages added later never share them",
    )


class StageSpec(BaseModel):
    """One stage of the chain: a name and its components, by kind (run in this order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=STAGE_NAME_PATTERN)
    beside: str | None = Field(
        None,
        pattern=STAGE_NAME_PATTERN,
        description="a stage beside the chain: it reads what this stage of the chain writes, and writes "
        "only its own outputs (nothing waits for it); none: a stage in the chain",
    )
    annotators: list[ComponentSpec] = Field(default_factory=list)
    filters: list[ComponentSpec] = Field(default_factory=list)
    sinks: list[ComponentSpec] = Field(default_factory=list)
    resources: StageResources | None = None
    own_principal: bool = Field(
        False,
        description="its workers reach Kafka as a principal of their own (a user's session: ACLs for just "
        "its topics), from the identity the controller gives them, never with the pipeline's own access",
    )

    @property
    def components(self) -> list[ComponentSpec]:
        return [*self.annotators, *self.filters, *self.sinks]


def default_stages(
    annotators: list[ComponentSpec] | None = None,
    filters: list[ComponentSpec] | None = None,
    sinks: list[ComponentSpec] | None = None,
) -> list[StageSpec]:
    """The default three stages, holding these components."""
    return [
        StageSpec(name="ingest", annotators=annotators or []),
        StageSpec(name="filter", filters=filters or []),
        StageSpec(name="distribute", sinks=sinks or []),
    ]


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(500, ge=1, le=100_000)
    source: ComponentSpec
    stages: list[StageSpec] = Field(default_factory=default_stages, min_length=1)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @model_validator(mode="before")
    @classmethod
    def _default_stages(cls, data: Any) -> Any:
        """``annotators``, ``filters`` and ``sinks`` at the top level fill the default three stages."""
        if not isinstance(data, dict) or not any(k in data for k in KIND_FIELDS):
            return data
        if "stages" in data:
            given = ", ".join(k for k in KIND_FIELDS if k in data)
            raise ValueError(
                f"a description that lists its stages names its components in them, not at the top ({given})"
            )
        rest = {k: v for k, v in data.items() if k not in KIND_FIELDS}
        stages = [{"name": name, kind: data.get(kind, [])} for name, kind in DEFAULT_STAGES.items()]
        return {**rest, "stages": stages}

    @model_validator(mode="after")
    def _names_are_unique(self) -> PipelineSpec:
        stage_names = [s.name for s in self.stages]
        if EMBEDDED_STAGE in stage_names:
            raise ValueError(f"no stage may be named {EMBEDDED_STAGE!r} (the embedded runtime's name)")
        repeated_stages = sorted({n for n in stage_names if stage_names.count(n) > 1})
        if repeated_stages:
            raise ValueError(f"stage names must be unique; repeated: {', '.join(repeated_stages)}")
        self._branches_read_the_chain()
        names = [c.instance_name for stage in self.stages for c in stage.components]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"component names must be unique; repeated: {', '.join(duplicates)} (set 'name')"
            )
        return self

    def _branches_read_the_chain(self) -> None:
        """Stages beside the chain come after the chain's stages, each reading one that writes a topic."""
        chain = [s.name for s in self.stages if s.beside is None]
        if not chain:
            raise ValueError("a pipeline needs a stage in the chain (one with no 'beside')")
        if any(s.beside is None for s in self.stages[len(chain) :]):
            raise ValueError("stages beside the chain are listed after the chain's stages")
        for stage in self.stages[len(chain) :]:
            if stage.beside not in chain[:-1]:
                raise ValueError(
                    f"stage {stage.name} is beside {stage.beside}, which is not a stage of the chain "
                    f"that writes a topic ({', '.join(chain[:-1]) or 'none does'})"
                )

    # Every component of a kind in the chain, whatever stage holds it, in chain order. (A stage beside
    # the chain keeps its own: what users manage, their filters and deliveries, lives in the chain.)
    @property
    def annotators(self) -> list[ComponentSpec]:
        return [c for stage in self.chain for c in stage.annotators]

    @property
    def filters(self) -> list[ComponentSpec]:
        return [c for stage in self.chain for c in stage.filters]

    @property
    def sinks(self) -> list[ComponentSpec]:
        return [c for stage in self.chain for c in stage.sinks]

    @property
    def chain(self) -> list[StageSpec]:
        """The stages of the chain, in order (every alert passes each), without those beside it."""
        return [stage for stage in self.stages if stage.beside is None]

    def stage(self, name: str) -> StageSpec:
        """The stage named ``name`` (KeyError if the chain has none)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def with_stage(self, stage: StageSpec) -> PipelineSpec:
        """This pipeline with the stage of ``stage``'s name replaced by it."""
        self.stage(stage.name)
        return self.model_copy(update={"stages": [stage if s.name == stage.name else s for s in self.stages]})

    def with_kind(self, kind: KindField, components: list[ComponentSpec]) -> PipelineSpec:
        """This pipeline with every component of ``kind`` replaced by ``components``, in the one stage
        that holds that kind (or, if none does, the stage that holds it by default, else the last)."""
        holding = [s for s in self.chain if getattr(s, kind)]
        if len(holding) > 1:
            raise ValueError(f"{kind} are in several stages ({', '.join(s.name for s in holding)}): name one")
        if holding:
            target = holding[0]
        else:
            default = next(name for name, k in DEFAULT_STAGES.items() if k == kind)
            target = next((s for s in self.chain if s.name == default), self.chain[-1])
        return self.with_stage(target.model_copy(update={kind: list(components)}))

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
        return cls.from_data(data, str(path))

    @classmethod
    def from_data(cls, data: Any, source: str) -> PipelineSpec:
        """A pipeline description read as data (ConfigError naming ``source`` and the fields if wrong)."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != VERSION_KEY}  # see ``file_version``
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source)) from exc


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
