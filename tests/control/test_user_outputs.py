"""Where a user's filter may send its matches: its own topic, never the pipeline's or another user's,
and never one Kafka would refuse beside the topics in use ('.' and '_' are one to Kafka)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starling.control.api.filters import FILTER_NAME
from starling.control.tokens import USER_NAME
from starling.control.user_outputs import (
    kafka_name,
    placed_outputs,
    topic_collision,
    user_topic,
    user_topic_prefix,
)
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.feed import feed
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, read_topic

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


def test_derived_topics_of_owners_and_filters_never_collide_in_kafka() -> None:
    """User ``ada_x``'s filter ``f`` and ``ada``'s ``x_f``: ``p.user.ada_x.f`` and ``p.user.ada.x_f``
    would be one topic to Kafka (it refuses the second). An owner's '_' is written 'U'."""
    assert user_topic(SPEC, "ada", "x_f") == "p.user.ada.x_f"  # an owner without '_': as it always was
    assert user_topic(SPEC, "ada_x", "f") == "p.user.adaUx.f"
    assert kafka_name(user_topic(SPEC, "ada_x", "f")) != kafka_name(user_topic(SPEC, "ada", "x_f"))
    assert user_topic(SPEC, "ada-x", "f") != user_topic(SPEC, "ada_x", "f")
    # A prefixed ACL on an owner's topics covers no other owner's.
    assert not user_topic(SPEC, "ada_x", "f").startswith(user_topic_prefix(SPEC, "ada"))


# Small alphabets, so that owners and names that collide under a naive derivation are common.
OWNERS = st.one_of(st.from_regex(r"[a][a_-]{0,4}", fullmatch=True), st.from_regex(USER_NAME, fullmatch=True))
NAMES = st.one_of(st.from_regex(r"[aA_-]{1,5}", fullmatch=True), st.from_regex(FILTER_NAME, fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(OWNERS, NAMES), min_size=2, max_size=12, unique=True))
def test_no_two_owners_or_filters_share_a_topic_as_kafka_reads_names(pairs: list[tuple[str, str]]) -> None:
    topics = [user_topic(SPEC, owner, name) for owner, name in pairs]
    assert len({kafka_name(topic) for topic in topics}) == len(pairs), topics
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", topic) for topic in topics)


def test_an_operator_cannot_name_a_topic_that_is_the_pipelines_own_to_kafka() -> None:
    for topic in ("p_filtered", "p_dead-letters", "p_user_ada_f", "p.user_bob.g"):
        _, problems = placed_outputs(SPEC, [{"type": "kafka", "topic": topic}], "operator", True, "f")
        assert problems, topic
        assert "pipeline's own" in problems[0], (topic, problems)


def _filter(name: str, *topics: str | None) -> ComponentSpec:
    outputs = [{"type": "kafka", **({"topic": t} if t else {})} for t in topics]
    return ComponentSpec(use="adql", name=name, config={"expression": "mag < 19", "outputs": outputs})


def test_a_topic_that_would_collide_with_one_in_use_is_found() -> None:
    filters = [
        _filter("public", "alerts.public"),
        _filter("ada_x.f", "p.user.ada_x.f"),  # derived before owners' '_' were written 'U'
        _filter("bright", None),  # the deliver sink's default: p.filter.bright
    ]

    def clash(component: str, *topics: str | None) -> str | None:
        return topic_collision(SPEC, filters, component, _filter(component, *topics).config["outputs"])

    assert clash("other", "alerts.public") is None  # two filters may share a topic
    assert clash("other", "alerts.elsewhere") is None
    assert clash("public", "alerts_public") is None  # its own topic, being replaced
    problem = clash("other", "alerts_public")
    assert problem is not None
    assert "collide" in problem
    assert "alerts.public" not in problem  # whose the other topic is, it does not say
    assert clash("ada.x_f", user_topic(SPEC, "ada", "x_f")) is not None
    assert clash("other", "p.filter_bright") is not None
    assert clash("other", "p_ingested") is not None
    assert topic_collision(SPEC, filters, "other", [{"type": "webhook", "url": "https://x.org"}]) is None


@pytest.fixture
def controller(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> Iterator[ControllerProcess]:
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(chain_spec(kafka_bootstrap, prefix, 300).model_dump_json())
    running = ControllerProcess(pipeline, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _post(controller: ControllerProcess, who: dict[str, str], name: str, **output: str) -> httpx.Response:
    body = {
        "name": name,
        "expression": "mag < 30",
        "outputs": [{"type": "kafka", "format": "json", **output}],
    }
    return httpx.post(f"{controller.url}/filters", headers=who, json=body, timeout=60)


@pytest.mark.kafka
def test_users_topics_never_collide_and_a_refused_topic_stops_no_one(
    controller: ControllerProcess, kafka_bootstrap: str, prefix: str
) -> None:
    """Users ``ada_x`` (filter ``f``) and ``ada`` (``x_f``) both get a topic of their own; a topic Kafka
    refuses all the same (one an operator named, colliding with a topic of the cluster's) costs only
    that filter: the distribute stage delivers everyone else's matches (it stopped, at every restart)."""
    url, operator = controller.url, controller.operator
    ada_x, ada = controller.user_token("ada_x"), controller.user_token("ada")
    assert _post(controller, ada_x, "f").status_code == 201
    assert _post(controller, ada, "x_f").status_code == 201
    topics = [
        httpx.get(f"{url}/filters/{name}", headers=who).json()["outputs"][0]["topic"]
        for who, name in ((ada_x, "f"), (ada, "x_f"))
    ]
    assert topics == [f"{prefix}.user.adaUx.f", f"{prefix}.user.ada.x_f"]

    # Two topics an operator names that Kafka would take for one: the second is refused at once.
    assert _post(controller, operator, "pub1", topic=f"{prefix}.public.a_b").status_code == 201
    clash = _post(controller, operator, "pub2", topic=f"{prefix}.public.a.b")
    assert clash.status_code == 409
    assert "collide" in clash.text
    # One the controller cannot know of: a topic of the cluster's, not of the pipeline.
    ensure_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [f"{prefix}.outside_x"])
    assert _post(controller, operator, "out", topic=f"{prefix}.outside.x").status_code == 201

    feed(chain_spec(kafka_bootstrap, prefix, 300))
    for topic in (*topics, f"{prefix}.public.a_b"):
        delivered = read_topic(kafka_bootstrap, topic, 1, timeout_s=120)
        assert delivered, topic
        assert all(json.loads(m.value())["alert_id"] for m in delivered)

    def refused() -> dict[str, int]:
        return httpx.get(f"{url}/filters/out", headers=operator).json()["counts"]["failed_deliveries"]

    wait_until(lambda: refused() > 0, 60, "the refused topic's matches to count as failed")
    workers = httpx.get(f"{url}/stages/distribute/workers", headers=operator).json()
    deliver = [w["status"]["components"]["deliver"] for w in workers if w["status"]]
    assert deliver
    assert all(f"{prefix}.outside.x" in d["refused_topics"] for d in deliver)
