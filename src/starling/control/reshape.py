"""The shape of the running chain: stages inserted, removed, split and fused while alerts flow.

Every change of shape replaces a run of neighbouring stages (the *segment*; none, to insert) by a new run
(none, to remove), between a stage before it (or the survey's topics) and a stage after it (or nothing,
at the end of the chain). The handover is the same for all four:

1. The segment drains in order, then the stage after it: each stage's replicas finish their batch and
   commit, after the next stage has taken everything the drained one wrote (its lag on that topic is 0).
   What the segment's first stage (or, to insert, the stage after) had committed on its input is then the
   whole truth: the *start*.
2. The new segment's first stage (or, to remove, the stage after) is set to read that input from the
   start, and each stage after it to read its new input from that topic's end
   (``starling.transport.kafka.handover``), before any of them runs.
3. The new pipeline is saved and written where workers read it, and the stages start on it.

The stage before the segment never stops, so the stream keeps coming in; the output waits only while
the segment and the stage after it drain and start again. Where the backend can start new stages held
(the local backend), no process is stopped or started at the cut: the same steps are made live
(``starling.control.rewire``), and the output waits a batch and a rebalance. Each alert passes each
stage of the chain as it was when it passed, once: nothing is lost, nothing is taken twice (the store is
idempotent, but a filter's output topic is not), and its provenance names the stages it passed.

The first stage decodes the survey's messages and the last one's sinks deliver, so a stage is inserted
after the first and before the last, and only a stage between two others is removed. Everything is done
under the controller's lock: other changes wait for a reshape to end.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from itertools import pairwise
from typing import Protocol

from starling.control.backends.base import Backend
from starling.control.rewire import hand_over_live
from starling.control.rollout import StageRollout
from starling.control.state import DesiredPipeline
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources, StageSpec
from starling.core.stages import (
    chain_names,
    checked,
    output_topic,
    stage_layout,
    stage_names,
    with_stage,
)
from starling.errors import ConfigError, OutageError
from starling.transport.kafka.clients import GroupLag, ensure_topics
from starling.transport.kafka.handover import (
    end_offsets,
    group_position,
    listed_end_offsets,
    set_group_position,
    wait_group_empty,
)

log = logging.getLogger("starling.reshape")


class Controller(Protocol):
    """What a reshape needs of the controller (``starling.control.controller.Controller``)."""

    lock: threading.RLock
    desired: DesiredPipeline
    backend: Backend
    rollouts: dict[str, StageRollout]

    def validate(self, stage: str, components: list[ComponentSpec], current: list[ComponentSpec]) -> None: ...

    def fits(self, desired: DesiredPipeline) -> None: ...

    def commit(self, desired: DesiredPipeline) -> None: ...

    def forget_lag(self, stage: str) -> None: ...

    def wanted_replicas(self, stage: str) -> int: ...


# How long a stage's replicas may take to drain, and the stage after it to take what it wrote.
DRAIN_TIMEOUT_S = 120.0


def insert_stage(
    controller: Controller, name: str, after: str, components: list[ComponentSpec], replicas: int = 1
) -> DesiredPipeline:
    """A new stage ``name`` right after stage ``after``, holding ``components``."""
    with controller.lock:
        names = chain_names(controller.desired.spec)
        index = _index(names, after) + 1
        if index == len(names):
            raise ConfigError(f"a stage goes before the last ({names[-1]}), whose sinks deliver")
        _name_is_free(controller.desired.spec, name)
        stage = _stage(controller, name, components)
        return _replace(controller, index, 0, [stage], {name: replicas}, f"{name} inserted after {after}")


def remove_stage(controller: Controller, name: str) -> DesiredPipeline:
    """Stage ``name`` taken out from between its two neighbours."""
    with controller.lock:
        if controller.desired.spec.stage(name).beside is not None:
            return _remove_branch(controller, name)
        names = chain_names(controller.desired.spec)
        index = _index(names, name)
        if index in (0, len(names) - 1):
            raise ConfigError(f"only a stage between two others can be removed ({name} is the first or last)")
        stage = controller.desired.spec.stages[index]
        if stage.filters or stage.sinks:
            # Users' filters and the deliveries of their matches would go with it: move them first.
            raise ConfigError(f"{name} holds filters or sinks: split or fuse them into another stage first")
        return _replace(controller, index, 1, [], {}, f"{name} removed")


def split_stage(
    controller: Controller,
    name: str,
    new_name: str,
    moved: list[str],
    replicas: int = 1,
    by_shaper: bool = False,
) -> DesiredPipeline:
    """Components ``moved`` of stage ``name`` taken into a new stage ``new_name`` right after it (so a
    heavy component scales on its own). They must be the stage's last components as it runs them
    (annotators, then filters, then sinks): each component still runs after those it ran after.
    ``by_shaper``: the shape policy's split, recorded for it to fuse back."""
    with controller.lock:
        spec = controller.desired.spec
        index = _index(chain_names(spec), name)
        _name_is_free(spec, new_name)
        current = spec.stages[index].components
        unknown = sorted(set(moved) - {c.instance_name for c in current})
        if unknown or not moved:
            raise ConfigError(f"name components of {name} to move (it has no {', '.join(unknown) or 'list'})")
        if len(set(moved)) == len(current):
            raise ConfigError(f"moving every component of {name} leaves it empty: insert a stage instead")
        tail = [c.instance_name for c in current[len(current) - len(set(moved)) :]]
        if sorted(tail) != sorted(set(moved)):
            order = ", ".join(c.instance_name for c in current)
            raise ConfigError(f"a split moves the last components of {name} as it runs them ({order})")
        kept = _stage(controller, name, [c for c in current if c.instance_name not in moved])
        split = _stage(controller, new_name, [c for c in current if c.instance_name in moved])
        counts = {name: controller.desired.replicas.get(name, 1), new_name: replicas}
        what = f"{name} split: {new_name} takes {', '.join(moved)}"
        return _replace(
            controller, index, 1, [kept, split], counts, what, {new_name: name} if by_shaper else {}
        )


def fuse_stages(controller: Controller, name: str, following: str) -> DesiredPipeline:
    """Stage ``name`` and the stage after it, ``following`` (named, so that no other is taken in after a
    reshape made meanwhile), made one stage under ``name``: one hop fewer."""
    with controller.lock:
        spec = controller.desired.spec
        names = chain_names(spec)
        index = _index(names, name)
        if index == len(names) - 1:
            raise ConfigError(f"{name} is the last stage: nothing follows it to fuse with")
        first, second = spec.stages[index], spec.stages[index + 1]
        if second.name != following:
            raise ConfigError(f"the stage after {name} is {second.name}, not {following}")
        ranks = [*_ranks(first), *_ranks(second)]
        if ranks != sorted(ranks):
            # A stage runs its annotators, then its filters, then its sinks: fused, some would run earlier.
            raise ConfigError(
                f"{name} and {second.name} cannot be one stage: some components would run earlier"
            )
        fused = _stage(controller, name, [*first.components, *second.components])
        counts = {name: max(controller.desired.replicas.get(n, 1) for n in (first.name, second.name))}
        return _replace(controller, index, 2, [fused], counts, f"{name} and {second.name} fused")


def add_branch(
    controller: Controller,
    name: str,
    beside: str,
    components: list[ComponentSpec],
    replicas: int = 1,
    resources: StageResources | None = None,
    own_principal: bool = False,
) -> DesiredPipeline:
    """A stage ``name`` beside the chain, reading what ``beside`` writes from now on, within ``resources``
    (and as a Kafka principal of its own, its identity set first)."""
    with controller.lock:
        before = controller.desired
        spec = before.spec
        _name_is_free(spec, name)
        _index(chain_names(spec), beside)
        stage = _stage(controller, name, components).model_copy(
            update={"beside": beside, "resources": resources, "own_principal": own_principal}
        )
        new_spec = checked(spec.model_copy(update={"stages": [*spec.stages, stage]}))
        desired = _next(before, new_spec, {**before.replicas, name: replicas})
        controller.fits(desired)
        kafka = spec.kafka
        # Its group (new, or left by an earlier stage of that name) begins at the end: what comes next.
        set_group_position(kafka, kafka.group(name), end_offsets(kafka, [output_topic(spec, beside)]))
        controller.commit(desired)
        _follow(controller, desired, [], [name])
        log.info("reshaped (version %d): %s added beside %s", desired.version, name, beside)
        return desired


def _remove_branch(controller: Controller, name: str) -> DesiredPipeline:
    before = controller.desired
    stages = [stage for stage in before.spec.stages if stage.name != name]
    desired = _next(before, checked(before.spec.model_copy(update={"stages": stages})), before.replicas)
    controller.commit(desired)
    _follow(controller, desired, [name], [])
    log.info("reshaped (version %d): %s, beside the chain, removed", desired.version, name)
    return desired


def _next(
    before: DesiredPipeline,
    spec: PipelineSpec,
    replicas: dict[str, int],
    split_from: dict[str, str] | None = None,
) -> DesiredPipeline:
    """The desired pipeline after ``before``: ``spec`` at ``replicas``, with what else it held."""
    return DesiredPipeline(
        version=before.version + 1,
        spec=spec,
        replicas=replicas,
        autoscaling=before.autoscaling,
        shape=before.shape,
        split_from={**before.split_from, **(split_from or {})},
    )


def _name_is_free(spec: PipelineSpec, name: str) -> None:
    if name in stage_names(spec):
        raise ConfigError(f"the pipeline has a stage {name!r} already")


def _ranks(stage: StageSpec) -> list[int]:
    """The order in which a stage runs its components' kinds, one entry per component."""
    return [0] * len(stage.annotators) + [1] * len(stage.filters) + [2] * len(stage.sinks)


def _index(names: list[str], name: str) -> int:
    if name not in names:
        raise KeyError(name)
    return names.index(name)


def _stage(controller: Controller, name: str, components: list[ComponentSpec]) -> StageSpec:
    """A stage of ``components`` (each to its kind's list), the new or changed ones validated."""
    spec = controller.desired.spec
    present = [c for stage in spec.stages for c in stage.components]
    controller.validate(name, components, current=present)
    holder = spec.model_copy(update={"stages": [StageSpec(name=name)]})
    return with_stage(holder, name, components).stage(name)


def _replace(
    controller: Controller,
    first: int,
    count: int,
    new_stages: list[StageSpec],
    replicas: dict[str, int],
    what: str,
    split_from: dict[str, str] | None = None,
) -> DesiredPipeline:
    """Stages ``first`` to ``first + count`` replaced by ``new_stages`` (``replicas`` of each), handing the
    stream over as the module note says."""
    before = controller.desired
    spec = before.spec
    names = chain_names(spec)
    # (The stages beside the chain come after its stages: they stay at the end.)
    stages = [*spec.stages[:first], *new_stages, *spec.stages[first + count :]]
    new_spec = checked(spec.model_copy(update={"stages": stages}))
    following = names[first + count] if first + count < len(names) else None
    old = names[first : first + count]
    new = [stage.name for stage in new_stages]
    draining = [*old, *([following] if following else [])]
    held = {stage: before.replicas.get(stage, 1) for stage in draining}
    idle = [stage for stage in draining[1:] if not held[stage]]
    if idle:
        raise ConfigError(
            f"stage {idle[0]} runs no replica: it could not take what the stage before it wrote"
        )
    desired = _next(before, new_spec, {**before.replicas, **replicas}, split_from)
    controller.fits(desired)
    readers = [*new, *([following] if following else [])]
    assert readers, "a reshape leaves a stage to read the segment's input"
    try:
        _hand_over_and_commit(controller, spec, desired, draining, readers)
    except Exception as exc:
        # As it was: nothing of the new shape has started, and the old stages take up where they stopped.
        controller.backend.scale(held)
        if isinstance(exc, ConfigError | OutageError):
            raise
        raise OutageError(f"{what}: {exc}") from exc
    _follow(controller, desired, old, readers)
    log.info("reshaped (version %d): %s", desired.version, what)
    return desired


def _hand_over_and_commit(
    controller: Controller,
    spec: PipelineSpec,
    desired: DesiredPipeline,
    draining: list[str],
    readers: list[str],
) -> None:
    """The handover, live where the backend can hold new stages, else by draining and restarting."""
    live = hand_over_live(
        controller.backend,
        spec,
        desired.spec,
        desired.version,
        draining,
        readers,
        desired.replicas,
        partial(_wait_taken, controller),
        partial(controller.commit, desired),
    )
    if not live:
        _hand_over(controller, spec, desired.spec, draining, readers)
        controller.commit(desired)


def _hand_over(
    controller: Controller,
    spec: PipelineSpec,
    new_spec: PipelineSpec,
    draining: list[str],
    readers: list[str],
) -> None:
    """Steps 1 and 2 of the module note: ``draining`` (the old segment and the stage after it) stopped in
    order, then ``readers`` (the new segment and the stage after it) set to read on from there."""
    kafka = spec.kafka
    inputs = stage_layout(spec, draining[0]).input_topics
    _drain(controller, draining[0])
    for upstream, downstream in pairwise(draining):
        _wait_taken(controller, downstream, output_topic(spec, upstream))
        _drain(controller, downstream)
    reads_survey = stage_layout(spec, draining[0]).decodes_survey_messages
    start = group_position(kafka, kafka.group(draining[0]), inputs, reads_survey)
    ensure_topics(kafka, [output_topic(new_spec, stage) for stage in readers[:-1]])
    set_group_position(kafka, kafka.group(readers[0]), start)
    for upstream, downstream in pairwise(readers):
        written = listed_end_offsets(kafka, output_topic(new_spec, upstream))
        set_group_position(kafka, kafka.group(downstream), written)


def _follow(controller: Controller, desired: DesiredPipeline, old: list[str], started: list[str]) -> None:
    """The controller's reconcilers, lag readers and backend brought to the new shape, and the stages
    that drained started on it."""
    for stage in set(old) - set(started):
        controller.rollouts.pop(stage).stop()
        controller.backend.remove_stage(stage)
    for stage in {*old, *started}:
        controller.forget_lag(stage)
    for stage in started:
        components = desired.spec.stage(stage).components
        rollout = controller.rollouts.get(stage)
        if rollout is None:
            rollout = StageRollout(stage, controller.backend, partial(controller.wanted_replicas, stage))
            rollout.publish(desired.version, components)  # before it first looks at the replicas
            rollout.start()
            controller.rollouts[stage] = rollout
        else:
            rollout.publish(desired.version, components)
    controller.backend.start_stages({stage: desired.replicas.get(stage, 1) for stage in started})


def _drain(controller: Controller, stage: str) -> None:
    """Stop every replica of ``stage`` after its batch in hand (it commits), and wait until all are gone
    and its consumer group has no member left (a Kubernetes pod may still be draining when it no longer
    counts among the stage's workers)."""
    controller.backend.scale({stage: 0})
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while controller.backend.workers(stage):
        if time.monotonic() > deadline:
            raise OutageError(f"the replicas of {stage} did not stop within {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    kafka = controller.desired.spec.kafka
    wait_group_empty(kafka, kafka.group(stage), max(1.0, deadline - time.monotonic()))


def _wait_taken(controller: Controller, stage: str, topic: str) -> None:
    """Wait until ``stage``'s group has committed everything on ``topic``."""
    kafka = controller.desired.spec.kafka
    reader = GroupLag(kafka, kafka.group(stage), [topic], reads_survey=False)
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (lag := reader.read()) > 0:
            if time.monotonic() > deadline:
                raise OutageError(f"{stage} has {lag} of {topic} still to take after {DRAIN_TIMEOUT_S:.0f} s")
            time.sleep(0.2)
    finally:
        reader.close()
