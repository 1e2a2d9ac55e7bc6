"""Pipeline assembly: the one step from the pipeline a user wrote to the pipeline that runs.

The command line (``starling run``, ``serve``, ``feed``, ``up``, ``controller``, ``deploy``) and the
controller (when users change their filters) all go through here, so the pipeline that runs is always
the written one plus exactly these, and nothing else:

1. with no pipeline file, the embedded default (:func:`default_pipeline`);
2. inputs given on the command line replace the pipeline's source (a replay of those files);
3. a ``deliver`` sink whose routes are the ADQL filters' ``outputs`` (:func:`route_deliveries`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from starling.components.outputs import DELIVER, Output
from starling.core.spec import ComponentSpec, PipelineSpec, default_stages
from starling.core.stages import delivering_stage

DEFAULT_SYNTHETIC_ALERTS = 20_000


def input_source(inputs: list[Path], alerts: int = DEFAULT_SYNTHETIC_ALERTS) -> ComponentSpec:
    """Replay the inputs, or with none, a synthetic night of ``alerts``."""
    if inputs:
        return ComponentSpec(use="replay", config={"paths": [str(p) for p in inputs]})
    return ComponentSpec(use="synthetic", config={"alerts": alerts})


def default_pipeline(source: ComponentSpec, batch_size: int = 500) -> PipelineSpec:
    """The embedded default: summarise each light curve, two example filters, and write everything
    to the SQLite store and the matches to files."""
    return PipelineSpec(
        batch_size=batch_size,
        source=source,
        stages=default_stages(
            annotators=[ComponentSpec(use="history-summary")],
            filters=[
                ComponentSpec(
                    use="threshold", name="bright", config={"max_mag": 18.5, "min_reliability": 0.5}
                ),
                ComponentSpec(
                    use="threshold", name="confirmed", config={"min_detections": 3, "min_reliability": 0.7}
                ),
            ],
            sinks=[ComponentSpec(use="store"), ComponentSpec(use="files")],
        ),
    )


def assemble(
    pipeline: Path | None = None,
    inputs: list[Path] | None = None,
    alerts: int = DEFAULT_SYNTHETIC_ALERTS,
    batch_size: int | None = None,
) -> PipelineSpec:
    """The pipeline that runs: the file's (or the default), its source replaced by ``inputs`` when
    there are any, ``batch_size`` when given, and its filters' deliveries routed."""
    if pipeline is not None:
        spec = PipelineSpec.from_file(pipeline)
        if inputs:
            spec = spec.model_copy(update={"source": input_source(inputs)})
    else:
        spec = default_pipeline(input_source(inputs or [], alerts))
    if batch_size is not None:
        spec = spec.model_copy(update={"batch_size": batch_size})
    return route_deliveries(spec)


def route_deliveries(spec: PipelineSpec) -> PipelineSpec:
    """The pipeline with a ``deliver`` sink whose routes are its ADQL filters' outputs (or none)."""
    routes: dict[str, list[dict[str, Any]]] = {}
    expressions: dict[str, str] = {}
    for component in spec.filters:
        outputs = component.config.get("outputs") if component.use == "adql" else None
        if outputs:
            routes[component.instance_name] = TypeAdapter(list[Output]).dump_python(
                TypeAdapter(list[Output]).validate_python(outputs), mode="json"
            )
            expressions[component.instance_name] = str(component.config.get("expression", ""))
    # The deliver sink sits in the stage that stores and delivers, after that stage's other sinks.
    stage = spec.stage(delivering_stage(spec))
    others = [s for s in stage.sinks if s.instance_name != DELIVER]
    current = next((s for s in spec.sinks if s.instance_name == DELIVER), None)
    if not routes:
        return spec if current is None else _with_sinks(spec, others)
    config = {**(current.config if current else {}), "routes": routes, "expressions": expressions}
    if current is not None and current.config == config:
        return spec
    return _with_sinks(spec, [*others, ComponentSpec(use=DELIVER, name=DELIVER, config=config)])


def _with_sinks(spec: PipelineSpec, sinks: list[ComponentSpec]) -> PipelineSpec:
    """``spec`` with the delivering stage's sinks replaced, and a deliver sink in no other stage of the
    chain (one beside it keeps its own)."""
    delivering = delivering_stage(spec)
    stages = [
        stage
        if stage.beside is not None
        else stage.model_copy(
            update={
                "sinks": sinks
                if stage.name == delivering
                else [s for s in stage.sinks if s.instance_name != DELIVER]
            }
        )
        for stage in spec.stages
    ]
    return spec.model_copy(update={"stages": stages})
