"""Where a user's filter may send its matches: never at anyone else.

A user does not name Kafka topics: each Kafka output of a user's filter writes to a topic derived
from its owner and its name, ``<prefix>.user.<owner>.<filter>``, so no user can write into the
pipeline's own topics or another user's, and a name freed by one user hands the next nothing. An
operator may name a topic, but not one of the pipeline's own, and only as Kafka allows (letters,
digits and ``._-``, at most 249 characters, not ``.`` or ``..``, which Kafka refuses; a spec holding
one would stop the distribute stage at each restart).

Kafka also refuses to create a topic whose name differs from an existing one only by ``.`` against
``_`` (the two are one character in its metric names): ``p.user.ada_x.f`` (user ``ada_x``, filter
``f``) would collide with ``p.user.ada.x_f`` (user ``ada``, filter ``x_f``). Derived names never
collide: an owner's ``_`` is written ``U`` in its topic (``p.user.adaUx.f``). A user's name is lower
case (``tokens.USER_NAME``), so the owner's segment holds no ``_`` or ``.`` and ends at the first
separator, and the filter's name is the rest: read as Kafka reads names, a derived topic still names
one owner and one filter. Chosen over refusing a colliding filter: nothing to look up (a refusal would
need every topic in the cluster, a deleted filter's too), no refusal that tells a user another user's
name exists, and the topic of every owner without ``_`` is the name it always was. What may still
collide (a topic an operator named, or one derived before this rule) is refused when a filter is
submitted or changed (``topic_collision``), and a topic Kafka refuses all the same costs only the
filters that write to it (the ``deliver`` sink).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from starling.core.spec import ComponentSpec, PipelineSpec
from starling.core.stages import all_topics

_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_ON_KAFKA = ("kafka", "voevent")  # the outputs that write to a topic (a VOEvent output when it names one)


def kafka_name(topic: str) -> str:
    """A topic as Kafka tells topics apart: ``.`` and ``_`` are one."""
    return topic.replace(".", "_")


def user_topic_prefix(spec: PipelineSpec, owner: str) -> str:
    """The start of every topic of ``owner``'s filters (for a prefixed ACL): no other owner's starts so."""
    return spec.kafka.topic(f"user.{owner.replace('_', 'U')}.")


def user_topic(spec: PipelineSpec, owner: str, filter_name: str) -> str:
    return f"{user_topic_prefix(spec, owner)}{filter_name}"


def topic_problem(spec: PipelineSpec, topic: str) -> str | None:
    """Why ``topic`` cannot be a filter's output (None if it can)."""
    if not _KAFKA_TOPIC.fullmatch(topic) or topic in (".", ".."):
        return f"{topic!r} is not a Kafka topic name (letters, digits, '._-', at most 249, not '.' or '..')"
    own = {kafka_name(t) for t in all_topics(spec)}
    reserved = [
        kafka_name(spec.kafka.topic(prefix)) for prefix in ("user.", "stage.")
    ]  # stage.: stages to come
    if kafka_name(topic) in own or kafka_name(topic).startswith(tuple(reserved)):
        return f"{topic!r} is one of the pipeline's own topics (to Kafka, '.' and '_' are one)"
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
                f"outputs[{index}].topic: a user's filter writes to its own topic ({own}); do not name one"
            )
            continue
        if topic is not None and topic != own and (problem := topic_problem(spec, topic)) is not None:
            problems.append(f"outputs[{index}].topic: {problem}")
            continue
        if output.get("type") == "kafka" and topic is None and not operator:
            output = {**output, "topic": own}
        placed.append(output)
    return placed, problems


def _topics(spec: PipelineSpec, component: str, outputs: Iterable[Any]) -> Iterator[str]:
    """The topics a filter's outputs write to (a Kafka output without one: the ``deliver`` sink's default)."""
    for output in outputs:
        if not isinstance(output, dict) or output.get("type") not in _ON_KAFKA:
            continue
        if output.get("topic"):
            yield str(output["topic"])
        elif output.get("type") == "kafka":
            yield spec.kafka.topic(f"filter.{component}")


def topic_collision(
    spec: PipelineSpec, filters: list[ComponentSpec], component: str, outputs: list[dict[str, Any]]
) -> str | None:
    """Why Kafka would refuse a topic of ``outputs`` (the filter ``component``'s) beside the topics in
    use: the pipeline's and the other filters' (None if it would not). Two filters may share a topic;
    names that differ only by ``.`` against ``_`` collide. Says nothing of whose the other topic is."""
    used: dict[str, str] = {kafka_name(t): t for t in all_topics(spec)}
    for other in filters:
        if other.instance_name != component:
            used.update(
                (kafka_name(t), t)
                for t in _topics(spec, other.instance_name, other.config.get("outputs", []))
            )
    for topic in _topics(spec, component, outputs):
        clash = used.get(kafka_name(topic))
        if clash is not None and clash != topic:
            return (
                f"the topic {topic!r} of this filter's outputs would collide in Kafka with a topic in "
                "use (to Kafka, '.' and '_' are one); give the filter another name (an operator: or "
                "another topic)"
            )
    return None
