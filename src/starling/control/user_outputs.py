"""Where a user's filter may send its matches: never at anyone else.

A user does not name Kafka topics: each Kafka output of a user's filter writes to a topic derived
from its owner and its name, ``<prefix>.user.<owner>.<filter>``, so no user can write into the
pipeline's own topics or another user's, and a name freed by one user hands the next nothing. An
operator may name a topic, but not one of the pipeline's own, and only as Kafka allows (letters,
digits and ``._-``, at most 249 characters, not ``.`` or ``..``, which Kafka refuses; a spec holding
one would stop the distribute stage at each restart).
"""

from __future__ import annotations

import re
from typing import Any

from starling.core.spec import PipelineSpec
from starling.core.stages import all_topics

_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def user_topic(spec: PipelineSpec, owner: str, filter_name: str) -> str:
    return spec.kafka.topic(f"user.{owner}.{filter_name}")


def topic_problem(spec: PipelineSpec, topic: str) -> str | None:
    """Why ``topic`` cannot be a filter's output (None if it can)."""
    if not _KAFKA_TOPIC.fullmatch(topic) or topic in (".", ".."):
        return f"{topic!r} is not a Kafka topic name (letters, digits, '._-', at most 249, not '.' or '..')"
    if topic in all_topics(spec) or topic.startswith(spec.kafka.topic("user.")):
        return f"{topic!r} is one of the pipeline's own topics"
    return None


def placed_outputs(
    spec: PipelineSpec, outputs: list[dict[str, Any]], owner: str, operator: bool, filter_name: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The outputs with their topics decided, and the problems that refuse them."""
    placed, problems = [], []
    for index, output in enumerate(outputs):
        topic = output.get("topic")
        own = user_topic(spec, owner, filter_name)
        if topic is not None and not operator and topic != own:
            problems.append(
                f"outputs[{index}].topic: a user's filter writes to its own topic; do not name one"
            )
            continue
        if topic is not None and topic != own and (problem := topic_problem(spec, topic)) is not None:
            problems.append(f"outputs[{index}].topic: {problem}")
            continue
        if output.get("type") == "kafka" and topic is None and not operator:
            output = {**output, "topic": own}
        placed.append(output)
    return placed, problems
