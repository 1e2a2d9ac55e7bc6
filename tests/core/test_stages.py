"""Stages as data: a pipeline description lists its stages in order, and the topics between them follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec, PipelineSpec, StageSpec, default_stages
from starling.core.stages import (
    all_topics,
    annotating_stage,
    chain_names,
    checked,
    delivering_stage,
    filtering_stage,
    stage_layout,
    stage_names,
)
from starling.errors import ConfigError
from tests.support.helpers import dump_store
from tests.support.paths import REPO

SOURCE = ComponentSpec(use="synthetic", config={"alerts": 600, "alerts_per_visit": 200, "seed": 7})
SUMMARY = ComponentSpec(use="history-summary")
FEATURES = ComponentSpec(use="lc-features")
BRIGHT = ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})
STORE = ComponentSpec(use="store")


def _four_stages(**fields: object) -> PipelineSpec:
    """ingest -> classify -> filter -> distribute, with the light-curve features in a stage of their own."""
    return PipelineSpec.model_validate(
        {
            "source": SOURCE.model_dump(),
            "stages": [
                {"name": "ingest", "annotators": [SUMMARY.model_dump()]},
                {"name": "classify", "annotators": [FEATURES.model_dump()]},
                {"name": "filter", "filters": [BRIGHT.model_dump()]},
                {"name": "distribute", "sinks": [STORE.model_dump()]},
            ],
            **fields,
        }
    )


def test_a_description_without_stages_has_the_default_three() -> None:
    spec = PipelineSpec.model_validate(
        {"source": SOURCE.model_dump(), "annotators": [SUMMARY.model_dump()], "sinks": [STORE.model_dump()]}
    )
    assert stage_names(spec) == ["ingest", "filter", "distribute"]
    assert spec.stages[0].annotators == [SUMMARY]
    assert spec.stages[2].sinks == [STORE]
    # What is written out lists the stages, and reads back the same.
    written = spec.model_dump(mode="json")
    assert "annotators" not in written
    assert [s["name"] for s in written["stages"]] == stage_names(spec)
    assert PipelineSpec.model_validate_json(json.dumps(written)) == spec


def test_the_topics_between_stages_follow_their_order() -> None:
    spec = _four_stages(kafka={"topic_prefix": "p"})
    layouts = [stage_layout(spec, name) for name in stage_names(spec)]
    assert [(lay.input_topics, lay.output_topic) for lay in layouts] == [
        (["p.raw"], "p.ingested"),
        (["p.ingested"], "p.stage.classify"),
        (["p.stage.classify"], "p.filtered"),
        (["p.filtered"], None),
    ]
    assert [lay.decodes_survey_messages for lay in layouts] == [True, False, False, False]
    assert all_topics(spec) == ["p.dead-letters", "p.filtered", "p.ingested", "p.raw", "p.stage.classify"]
    # The default three keep the topics they always had.
    default = PipelineSpec(source=SOURCE, kafka={"topic_prefix": "p"})  # type: ignore[arg-type]
    assert all_topics(default) == ["p.dead-letters", "p.filtered", "p.ingested", "p.raw"]
    with pytest.raises(KeyError):
        stage_layout(spec, "nowhere")


def test_users_components_join_the_stage_that_holds_their_kind() -> None:
    spec = _four_stages()
    assert (annotating_stage(spec), filtering_stage(spec), delivering_stage(spec)) == (
        "ingest",
        "filter",
        "distribute",
    )
    fused = PipelineSpec(
        source=SOURCE,
        stages=[
            StageSpec(name="ingest", annotators=[SUMMARY]),
            StageSpec(name="judge-and-keep", filters=[BRIGHT], sinks=[STORE]),
        ],
    )
    assert filtering_stage(fused) == delivering_stage(fused) == "judge-and-keep"
    # With no filter anywhere yet, users' filters go to the stage named for them, else before the last.
    empty = PipelineSpec(
        source=SOURCE, stages=[StageSpec(name="a"), StageSpec(name="b"), StageSpec(name="c")]
    )
    assert (filtering_stage(empty), delivering_stage(empty)) == ("b", "c")


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"name": "ingest"}, {"name": "ingest"}], "stage names must be unique; repeated: ingest"),
        ([{"name": "embedded"}], "no stage may be named 'embedded'"),
        ([{"name": "Upper"}], "String should match pattern"),
        ([], "at least 1 item"),
        (
            [
                {"name": "a", "annotators": [SUMMARY.model_dump()]},
                {"name": "b", "annotators": [SUMMARY.model_dump()]},
            ],
            "component names must be unique; repeated: history-summary",
        ),
    ],
)
def test_a_wrong_list_of_stages_is_refused_saying_why(stages: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": stages})


def test_stages_and_top_level_components_are_not_mixed(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text('[source]\nuse = "synthetic"\n[[stages]]\nname = "ingest"\n[[sinks]]\nuse = "store"\n')
    with pytest.raises(ConfigError, match="not at the top \\(sinks\\)"):
        PipelineSpec.from_file(path)


def test_with_kind_replaces_a_kind_in_the_one_stage_that_holds_it() -> None:
    spec = _four_stages()
    changed = spec.with_kind("filters", [])
    assert changed.filters == []
    assert changed.annotators == spec.annotators
    assert changed.with_kind("filters", [BRIGHT]) == spec  # back where it was: the stage named for them
    with pytest.raises(ValueError, match="annotators are in several stages"):
        spec.with_kind("annotators", [])


def test_the_example_with_its_own_stage_runs() -> None:
    spec = PipelineSpec.from_file(REPO / "examples" / "pipelines" / "classified.toml")
    assert stage_names(spec) == ["ingest", "classify", "filter", "distribute"]


def test_a_chain_of_four_stages_embedded_gives_what_three_give(tmp_path: Path) -> None:
    """Cutting the chain differently changes where components run, never what the alerts become."""
    four = _four_stages()
    three = PipelineSpec(
        source=SOURCE, stages=default_stages(annotators=[SUMMARY, FEATURES], filters=[BRIGHT], sinks=[STORE])
    )
    dumps = []
    for name, spec in (("four", four), ("three", three)):
        summary = EmbeddedPipeline(spec, tmp_path / name).run()
        assert summary.stats.alerts_decoded == 600
        dumps.append(dump_store(tmp_path / name / "starling.db"))
    assert dumps[0] == dumps[1]
    assert sum(row["annotator"] == "lc-features" for row in dumps[0]["annotations"]) == 600


def test_a_stage_may_not_hold_a_source() -> None:
    spec = PipelineSpec(
        source=SOURCE, stages=[StageSpec(name="ingest", sinks=[ComponentSpec(use="synthetic")])]
    )
    with pytest.raises(ConfigError, match="is a source, but it is used as a sink"):
        EmbeddedPipeline(spec, Path("/nonexistent"))


def test_the_controller_keeps_what_users_manage_where_their_apis_find_it() -> None:
    from starling.core.stages import checked

    spec = _four_stages()
    assert checked(spec) == spec
    spread = spec.model_copy(
        update={
            "stages": [
                *spec.stages[:2],
                spec.stages[2].model_copy(update={"sinks": [ComponentSpec(use="files")]}),
                spec.stages[3],
            ]
        }
    )
    with pytest.raises(
        ConfigError, match="the sinks must stay in one stage; they would be in filter, distribute"
    ):
        checked(spread)
    lists = ComponentSpec(use="watchlists", config={"lists": []})
    moved = spec.model_copy(
        update={
            "stages": [
                spec.stages[0],
                spec.stages[1].model_copy(update={"annotators": [FEATURES, lists]}),
                *spec.stages[2:],
            ]
        }
    )
    with pytest.raises(ConfigError, match="watchlists must stay in the first stage"):
        checked(moved)
    doubled = spec.model_copy(
        update={
            "stages": [
                spec.stages[0],
                spec.stages[1].model_copy(update={"annotators": [SUMMARY]}),
                *spec.stages[2:],
            ]
        }
    )
    with pytest.raises(ConfigError, match="component names must be unique; repeated: history-summary"):
        checked(doubled)


@pytest.mark.parametrize("start", ["latest", "earliest", 1_764_000_000_000])
def test_only_the_first_stage_starts_where_the_pipeline_says(start: str | int) -> None:
    """``start_from`` is where the chain starts reading the survey; a stage reading the chain's own topic
    takes all of it, or it would miss what the stage before it wrote before it joined (or a stage a
    reshape started)."""
    from starling.core.kafka_settings import KafkaSettings
    from starling.transport.kafka.clients import consumer_config, start_from

    settings = KafkaSettings(start_from=start)
    assert start_from(settings, reads_survey=True) == start
    assert start_from(settings, reads_survey=False) == "earliest"
    assert consumer_config(settings, "filter", reads_survey=False)["auto.offset.reset"] == "earliest"
    expected = "latest" if start == "latest" else "earliest"
    assert consumer_config(settings, "ingest", reads_survey=True)["auto.offset.reset"] == expected


@pytest.mark.samples
def test_the_real_alerts_through_four_stages_are_what_three_make(samples: Path, tmp_path: Path) -> None:
    """Every real alert (ZTF 1.8 to 4.02, LSSTCam) cut into four stages embedded, as three: the same store."""
    replay = ComponentSpec(use="replay", config={"paths": [str(samples / "realworld")]})
    four = _four_stages().model_copy(update={"source": replay})
    three = PipelineSpec(
        source=replay, stages=default_stages(annotators=[SUMMARY, FEATURES], filters=[BRIGHT], sinks=[STORE])
    )
    dumps = []
    for name, spec in (("four", four), ("three", three)):
        summary = EmbeddedPipeline(spec, tmp_path / name).run()
        assert summary.dead_letters == {}
        dumps.append(dump_store(tmp_path / name / "starling.db"))
    assert dumps[0] == dumps[1]
    assert {row["survey"] for row in dumps[0]["alerts"]} == {"ztf", "rubin"}
    assert sum(row["annotator"] == "lc-features" for row in dumps[0]["annotations"]) == len(
        dumps[0]["alerts"]
    )


BRANCH = {
    "name": "watcher",
    "beside": "filter",
    "annotators": [FEATURES.model_dump()],
    "filters": [{"use": "threshold", "name": "watcher-bright", "config": {"max_mag": 19.5}}],
    "sinks": [{"use": "files", "config": {"directory": "watcher", "filters": ["watcher-bright"]}}],
}
CHAIN = [
    {"name": "ingest", "annotators": [SUMMARY.model_dump()]},
    {"name": "filter", "filters": [BRIGHT.model_dump()]},
    {"name": "distribute", "sinks": [STORE.model_dump()]},
]


def test_a_stage_beside_the_chain_reads_a_stage_and_writes_only_its_own() -> None:
    spec = PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": [*CHAIN, BRANCH]})
    assert stage_names(spec) == ["ingest", "filter", "distribute", "watcher"]
    assert chain_names(spec) == ["ingest", "filter", "distribute"]
    layout = stage_layout(spec, "watcher")
    assert layout.input_topics == [spec.kafka.topic("filtered")]
    assert layout.output_topic is None
    assert not layout.decodes_survey_messages
    # What users manage stays in the chain: the branch's own filter and sink are its own.
    assert [f.instance_name for f in spec.filters] == ["bright"]
    assert [s.use for s in spec.sinks] == ["store"]
    assert filtering_stage(spec) == "filter"
    assert delivering_stage(spec) == "distribute"
    assert checked(spec) == spec
    # The stage it reads cannot leave the chain while it is there (the controller's check says why).
    without_filter = [CHAIN[0], {**CHAIN[2], "filters": [BRIGHT.model_dump()]}, BRANCH]
    stages = [spec.stages[0], spec.stages[2].model_copy(update={"filters": [BRIGHT]}), spec.stages[3]]
    with pytest.raises(ConfigError, match="watcher is beside filter, which is not a stage of the chain"):
        checked(spec.model_copy(update={"stages": stages}))
    with pytest.raises(ValidationError, match="watcher is beside filter"):
        PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": without_filter})


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [*CHAIN, {**BRANCH, "beside": "distribute"}],
            "which is not a stage of the chain that writes a topic",
        ),
        ([*CHAIN, {**BRANCH, "beside": "nowhere"}], "which is not a stage of the chain"),
        ([CHAIN[0], BRANCH, *CHAIN[1:]], "stages beside the chain are listed after the chain's stages"),
        ([{**BRANCH, "beside": "ingest"}], "a pipeline needs a stage in the chain"),
    ],
)
def test_a_wrong_stage_beside_the_chain_is_refused(stages: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": stages})


def test_embedded_a_stage_beside_the_chain_changes_nothing_the_chain_makes(tmp_path: Path) -> None:
    plain = PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": CHAIN})
    branched = PipelineSpec.model_validate({"source": SOURCE.model_dump(), "stages": [*CHAIN, BRANCH]})
    dumps = []
    for name, spec in (("plain", plain), ("branched", branched)):
        EmbeddedPipeline(spec, tmp_path / name).run()
        dumps.append(dump_store(tmp_path / name / "starling.db"))
    assert dumps[0] == dumps[1]  # not even the branch's light-curve features reach the store
    written = (tmp_path / "branched" / "watcher" / "watcher-bright.jsonl").read_text().splitlines()
    bright = [json.loads(line)["alert_id"] for line in written]
    assert 0 < len(bright) == len(set(bright)) < 600
