"""How a pipeline is cut into stages when Kafka runs between them.

=============  =============================  ===================  ======================  ============
stage          reads                          components           writes                  group
=============  =============================  ===================  ======================  ============
ingest         survey topics (or <p>.raw)     decode + annotators  <p>.ingested            <p>.ingest
filter         <p>.ingested                   filters              <p>.filtered            <p>.filter
distribute     <p>.filtered                   sinks                (the sinks' outputs)    <p>.distribute
=============  =============================  ===================  ======================  ============

The same pipeline description runs embedded (all of it in one process) with no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starling.core.component import ComponentKind
from starling.core.spec import ComponentSpec, PipelineSpec

StageName = Literal["ingest", "filter", "distribute"]
STAGES: tuple[StageName, ...] = ("ingest", "filter", "distribute")


@dataclass(frozen=True, slots=True)
class StageLayout:
    name: StageName
    input_topics: list[str]
    output_topic: str | None
    decodes_survey_messages: bool


def stage_layout(spec: PipelineSpec, name: StageName) -> StageLayout:
    kafka = spec.kafka
    if name == "ingest":
        return StageLayout(name, kafka.input_topics or [kafka.raw_topic], kafka.topic("ingested"), True)
    if name == "filter":
        return StageLayout(name, [kafka.topic("ingested")], kafka.topic("filtered"), False)
    return StageLayout(name, [kafka.topic("filtered")], None, False)


def stage_kind(name: StageName) -> ComponentKind:
    """The kind of component a stage runs."""
    kinds: dict[StageName, ComponentKind] = {"ingest": "annotator", "filter": "filter", "distribute": "sink"}
    return kinds[name]


def stage_component_specs(spec: PipelineSpec, name: StageName) -> list[ComponentSpec]:
    return list({"ingest": spec.annotators, "filter": spec.filters, "distribute": spec.sinks}[name])


def all_topics(spec: PipelineSpec) -> list[str]:
    """Every topic the chain uses, survey inputs included."""
    kafka = spec.kafka
    topics = {kafka.dead_letter_topic}
    for name in STAGES:
        layout = stage_layout(spec, name)
        topics.update(layout.input_topics)
        if layout.output_topic:
            topics.add(layout.output_topic)
    return sorted(topics)
