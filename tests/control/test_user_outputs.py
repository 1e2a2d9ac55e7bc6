"""Where a user's filter may send its matches: its own topic, never the pipeline's or another user's."""

from __future__ import annotations

from starling.control.user_outputs import placed_outputs, user_topic
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec

SPEC = PipelineSpec(source=ComponentSpec(use="synthetic"), kafka=KafkaSettings(topic_prefix="p"))


def test_a_users_kafka_output_goes_to_a_topic_of_its_owner() -> None:
    placed, problems = placed_outputs(SPEC, [{"type": "kafka"}], "ada", False, "bright")
    assert problems == []
    assert placed == [{"type": "kafka", "topic": "p.user.ada.bright"}]
    assert user_topic(SPEC, "bob", "bright") != placed[0]["topic"]
    again, problems = placed_outputs(SPEC, placed, "ada", False, "bright")  # as read back, then sent
    assert (again, problems) == (placed, [])


def test_a_user_cannot_name_a_topic_and_an_operator_not_the_pipelines_own() -> None:
    for topic in ("p.filtered", "p.raw", "p.user.bob.bright", "anything"):
        _, problems = placed_outputs(SPEC, [{"type": "kafka", "topic": topic}], "ada", False, "f")
        assert problems
        assert "do not name one" in problems[0]
    refusals = [
        ("p.filtered", "pipeline's own"),
        ("p.dead-letters", "pipeline's own"),
        ("p.user.ada.f", "pipeline's own"),
        ("..", "not a Kafka topic"),
        ("x" * 250, "not a Kafka topic"),
    ]
    for topic, why in refusals:
        _, problems = placed_outputs(SPEC, [{"type": "kafka", "topic": topic}], "operator", True, "f")
        assert problems, topic
        assert why in problems[0], (topic, problems)
    placed, problems = placed_outputs(
        SPEC, [{"type": "kafka", "topic": "alerts.public"}], "operator", True, "f"
    )
    assert (placed, problems) == ([{"type": "kafka", "topic": "alerts.public"}], [])
