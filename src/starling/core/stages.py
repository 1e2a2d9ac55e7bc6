"""How a pipeline is cut into stages when Kafka runs between them.

The stages are data: the pipeline description lists them in order (``PipelineSpec.stages``), and the
topics between them follow from that order. The first stage decodes the survey's messages; each later
stage reads what the stage before it wrote; the last writes no topic of the chain's (its sinks write
the outputs). For the default three stages:

=============  =============================  ===================  ======================  ============
stage          reads                          components           writes                  group
=============  =============================  ===================  ======================  ============
ingest         survey topics (or <p>.raw)     decode + annotators  <p>.ingested            <p>.ingest
filter         <p>.ingested                   filters              <p>.filtered            <p>.filter
distribute     <p>.filtered                   sinks                (the sinks' outputs)    <p>.distribute
=============  =============================  ===================  ======================  ============

Any other stage ``s`` writes ``<p>.stage.s`` (a topic name no user output can take) and its group is
``<p>.s``. The same pipeline description runs embedded (all of it in one process) with no change.

A stage *beside* the chain (``beside = "ingest"``) reads what that stage of the chain writes, in a group
of its own, and writes only its own outputs (its sinks'): nothing in the chain waits for it, so a slow
or failing one delays no one's alerts. Embedded, it runs after the chain on each batch (it then sees what
later stages added too).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from starling.core.registry import component_class
from starling.core.spec import KIND_FIELDS, KIND_OF_FIELD, ComponentSpec, PipelineSpec
from starling.errors import ConfigError

# The topics of the default stages keep the names they had before stages were data, so a chain that
# runs today reads its own topics after an upgrade.
_OUTPUT_TOPIC_NAMES = {"ingest": "ingested", "filter": "filtered"}


@dataclass(frozen=True, slots=True)
class StageLayout:
    name: str
    input_topics: list[str]
    output_topic: str | None
    decodes_survey_messages: bool


def stage_names(spec: PipelineSpec) -> list[str]:
    """Every stage that runs: the chain's, then those beside it."""
    return [stage.name for stage in spec.stages]


def chain_names(spec: PipelineSpec) -> list[str]:
    """The stages of the chain, in order (every alert passes each), without those beside it."""
    return [stage.name for stage in spec.chain]


def output_topic(spec: PipelineSpec, name: str) -> str:
    """The topic a stage writes when a stage follows it."""
    return spec.kafka.topic(_OUTPUT_TOPIC_NAMES.get(name) or f"stage.{name}")


def stage_layout(spec: PipelineSpec, name: str) -> StageLayout:
    """Where stage ``name`` reads and writes (KeyError if the pipeline has no such stage)."""
    beside = spec.stage(name).beside
    if beside is not None:  # it reads what that stage writes, and writes nothing the chain reads
        return StageLayout(name, [output_topic(spec, beside)], None, False)
    names = chain_names(spec)
    index = names.index(name)
    kafka = spec.kafka
    first, last = index == 0, index == len(names) - 1
    inputs = (kafka.input_topics or [kafka.raw_topic]) if first else [output_topic(spec, names[index - 1])]
    return StageLayout(name, inputs, None if last else output_topic(spec, name), first)


def stage_component_specs(spec: PipelineSpec, name: str) -> list[ComponentSpec]:
    return spec.stage(name).components


def filtering_stage(spec: PipelineSpec) -> str:
    """The stage users' filters join: the one that holds filters, else ``filter``, else the one before
    the last (or the only one)."""
    return _stage_holding(spec, "filters", "filter", max(0, len(chain_names(spec)) - 2))


def annotating_stage(spec: PipelineSpec) -> str:
    """The stage users' watchlists and watchmaps join: the first (before any filter can read them)."""
    return spec.stages[0].name


def delivering_stage(spec: PipelineSpec) -> str:
    """The stage that stores and delivers: the one that holds the sinks, else the last."""
    return _stage_holding(spec, "sinks", "distribute", len(chain_names(spec)) - 1)


def _stage_holding(spec: PipelineSpec, kind: str, default: str, fallback: int) -> str:
    holding = [s.name for s in spec.chain if getattr(s, kind)]
    if holding:
        return holding[-1]
    names = chain_names(spec)
    return default if default in names else names[fallback]


def all_topics(spec: PipelineSpec) -> list[str]:
    """Every topic the chain uses, survey inputs included."""
    topics = {spec.kafka.dead_letter_topic}
    for name in stage_names(spec):
        layout = stage_layout(spec, name)
        topics.update(layout.input_topics)
        if layout.output_topic:
            topics.add(layout.output_topic)
    return sorted(topics)


def with_stage(spec: PipelineSpec, stage: str, components: list[ComponentSpec]) -> PipelineSpec:
    """``spec`` with the components of ``stage`` replaced: each goes to its kind's list in the stage
    (ConfigError for a component not installed), keeping their order within a kind."""
    by_field: dict[str, list[ComponentSpec]] = {field: [] for field in KIND_FIELDS}
    for component in components:
        kind = component_class(component.use).kind
        field = next((f for f in KIND_FIELDS if KIND_OF_FIELD[f] == kind), None)
        if field is None:
            raise ConfigError(f"component {component.use!r} is a {kind}: it cannot run in a stage")
        by_field[field].append(component)
    return spec.with_stage(spec.stage(stage).model_copy(update=by_field))


# Annotators whose lists users manage (``/watchlists``, ``/watchmaps``): they live in the first stage.
USERS_ANNOTATORS = ("watchlists", "watchmaps")


def checked(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` after a change by the controller, validated again as a whole (ConfigError saying why),
    with what users manage where their APIs find it: all filters in one stage, all sinks in one stage
    (users' filters, and the deliveries of their matches), and the watch annotators in the first."""
    try:
        spec = PipelineSpec.model_validate(spec.model_dump())
    except ValidationError as exc:
        raise ConfigError("; ".join(str(error["msg"]) for error in exc.errors())) from exc
    for kind in ("filters", "sinks"):  # a stage beside the chain may hold its own
        holding = [s.name for s in spec.chain if getattr(s, kind)]
        if len(holding) > 1:
            raise ConfigError(f"the {kind} must stay in one stage; they would be in {', '.join(holding)}")
    away = [c.instance_name for s in spec.stages[1:] for c in s.annotators if c.use in USERS_ANNOTATORS]
    if away:
        raise ConfigError(f"{', '.join(away)} must stay in the first stage (users' lists are kept there)")
    return spec
