"""A reshape's handover done live: no stage that stays is restarted, new stages are started beforehand.

The handover of ``starling.control.reshape``, with the same cut, made without stopping processes:

1. The stages the new shape adds are started *held* on the new pipeline (``Backend.start_held``): up,
   in their consumer groups, taking nothing. The output goes on meanwhile.
2. The cut: the segment's stages, then the stage after it, are paused in order, each at a batch
   boundary once it has taken everything the one before it wrote (everything it took is then committed).
3. The start of each stage of the new shape is read as in the restart handover: the new first stage
   begins where the old first stage stopped, each later one at the end of its new input.
4. Every replica of the new shape's stages is given its wiring (``POST /wiring``: the new pipeline and its
   start); each applies it at once and goes on. The new pipeline is committed just before, so a worker
   restarted from then on starts on it. Stages the new shape drops are drained (``reshape._follow``).

The output stalls only from the cut to the wiring: a batch, a few admin reads and, for a stage whose
input changed, one rebalance of its group. Where the backend cannot hold new stages (Kubernetes, for
now), ``reshape`` drains and restarts them instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import pairwise

from starling.control.backends.base import Backend
from starling.control.client import WorkerClient
from starling.core.spec import PipelineSpec
from starling.core.stages import output_topic, stage_layout
from starling.errors import OutageError
from starling.transport.kafka.clients import ensure_topics
from starling.transport.kafka.handover import Offsets, group_position, listed_end_offsets, wait_committed
from starling.transport.kafka.wiring import format_start

log = logging.getLogger("starling.reshape")

# Waits until a stage's group has committed everything on a topic (``reshape._wait_taken``).
WaitTaken = Callable[[str, str], None]

# How long new stages may take to start and hold, and a replica to pause or to take its wiring.
HOLD_TIMEOUT_S = 120.0
WIRING_TIMEOUT_S = 60.0


def hand_over_live(
    backend: Backend,
    spec: PipelineSpec,
    new_spec: PipelineSpec,
    version: int,
    draining: list[str],
    readers: list[str],
    replicas: dict[str, int],
    wait_taken: WaitTaken,
    commit: Callable[[], None],
) -> bool:
    """The module note's steps for a segment whose old stages (and the one after) are ``draining`` and new
    ones (and the one after) are ``readers``. False, with nothing done, when the backend cannot hold new
    stages. If anything fails before the wiring, the paused stages go on and the held ones are removed."""
    started = [stage for stage in readers if stage not in draining]
    if started and not backend.start_held(new_spec, version, {s: replicas.get(s, 1) for s in started}):
        return False
    paused: list[str] = []
    began = time.monotonic()
    try:
        for stage in started:
            _wait_holding(backend, stage, replicas.get(stage, 1))
        cut = time.monotonic()
        ensure_topics(spec.kafka, [output_topic(new_spec, stage) for stage in readers[:-1]])
        _pause(backend, draining[0])
        paused.append(draining[0])
        for upstream, downstream in pairwise(draining):
            wait_taken(downstream, output_topic(spec, upstream))
            _pause(backend, downstream)
            paused.append(downstream)
        starts = _starts(spec, new_spec, draining[0], readers)
        commit()  # the new pipeline saved and written where restarted workers read it
    except Exception:
        for stage in paused:
            for worker in backend.workers(stage):
                worker.post("/resume")
        for stage in started:
            backend.remove_stage(stage)
        raise
    wired = time.monotonic()
    _wire(backend, new_spec, version, readers, starts)
    log.info(
        "version %d live: new stages held in %.2f s; cut %.2f s; wiring taken in %.2f s",
        version,
        cut - began,
        wired - cut,
        time.monotonic() - wired,
    )
    return True


def _starts(spec: PipelineSpec, new_spec: PipelineSpec, first: str, readers: list[str]) -> dict[str, Offsets]:
    """Where each of ``readers`` begins: the first where ``first`` stopped on its input, each other at the
    end of its new input (written by a stage that is paused or held: the end stands still)."""
    kafka = spec.kafka
    layout = stage_layout(spec, first)
    starts = {
        readers[0]: group_position(
            kafka, kafka.group(first), layout.input_topics, layout.decodes_survey_messages
        )
    }
    for upstream, downstream in pairwise(readers):
        starts[downstream] = listed_end_offsets(kafka, output_topic(new_spec, upstream))
    return starts


def _pause(backend: Backend, stage: str) -> None:
    """Pause every replica of ``stage`` and wait until each holds at a batch boundary."""
    for worker in backend.workers(stage):
        worker.post("/pause")
    _wait_holding(backend, stage, len(backend.workers(stage)))


def _wait_holding(backend: Backend, stage: str, count: int) -> None:
    deadline = time.monotonic() + HOLD_TIMEOUT_S
    while True:
        workers = backend.workers(stage)
        holding = [w for w in workers if _status(w).get("holding") is True]
        if len(holding) >= count and len(holding) == len(workers):
            return
        if time.monotonic() > deadline:
            raise OutageError(
                f"{stage}: {len(holding)} of {count} replicas holding after {HOLD_TIMEOUT_S:.0f} s"
            )
        time.sleep(0.05)


def _wire(
    backend: Backend, new_spec: PipelineSpec, version: int, readers: list[str], starts: dict[str, Offsets]
) -> None:
    """Give every replica of ``readers`` its wiring, and wait until each runs it and its group has
    committed its starts (a replica started from the pipeline file later then begins there too). A replica
    that does not take it is left to the log: the reshape is made by then."""
    pipeline = new_spec.model_dump(mode="json")
    for stage in readers:
        body = {"pipeline": pipeline, "pipeline_version": version, "start": format_start(starts[stage])}
        for worker in backend.workers(stage):
            # A few tries: a replica left paused without its wiring would hold its partitions.
            if not _wire_one(worker, body):
                log.error("%s#%d did not take its wiring (version %d)", stage, worker.replica, version)
    deadline = time.monotonic() + WIRING_TIMEOUT_S
    for stage in readers:
        while not all(_runs(w, version) for w in backend.workers(stage)):
            if time.monotonic() > deadline:
                log.error(
                    "%s: not every replica runs version %d after %.0f s", stage, version, WIRING_TIMEOUT_S
                )
                break
            time.sleep(0.05)
    kafka = new_spec.kafka
    for stage in readers:
        try:
            wait_committed(kafka, kafka.group(stage), starts[stage], max(1.0, deadline - time.monotonic()))
        except OutageError as exc:
            log.warning("%s: %s (its first batches will commit them)", stage, exc)


def _wire_one(worker: WorkerClient, body: dict[str, object], tries: int = 5) -> bool:
    for attempt in range(tries):
        if worker.request("POST", "/wiring", body, 10.0) is not None:
            return True
        if attempt < tries - 1:
            time.sleep(0.5)
    return False


def _runs(worker: WorkerClient, version: int) -> bool:
    status = _status(worker)
    applied = status.get("applied_pipeline_version")
    return isinstance(applied, int) and applied >= version and status.get("holding") is False


def _status(worker: WorkerClient) -> dict[str, object]:
    return worker.get("/status", timeout_s=5.0) or {}
