"""The capacity plan checked on nights and filter sets it was not measured on (``--only plan``).

``starling plan`` measures what each stage costs per alert (CPU seconds, its first batch not counted) on a
sample (2,000 synthetic alerts, or real ones replayed to 1,000), and plans replicas from that. Here the
plan's costs, measured with its ``measure_costs`` on a night of 1,000 alerts, are checked against what the
same stages then cost on a night of the same kind ten times as long (five times for the deep night, whose
alerts take 8 ms each to generate). The synthetic nights keep their number of alerts per object (a sixth of
the alerts are distinct objects, per survey), so the longer night's objects come back as often as the
sample's. What this does not show: a night whose objects come back more often than the sample's costs more
per alert in the store (each known object's history is merged), so a sample must be of the night it plans
for. The configurations:

- the default pipeline on the deep night (the deep fields' histories) and on the wide night (young objects
  with forced photometry and cutouts);
- 100 and 1,000 live ADQL filters (the filter bench's) on the filter stage, on the short night.

Both measurements are the plan's own (``measure_costs``, in this process, in the same run): the ratio is the
longer night's cost per alert over the sample's, for the whole chain, with each stage's in the details.
Target: within 20%.
"""

from __future__ import annotations

import time

from rich.console import Console

from filter_bench import filter_specs
from starling.assembly import default_pipeline
from starling.cli.plan import MEASURED_ALERTS, measure_costs
from starling.core.spec import ComponentSpec, PipelineSpec, default_stages

Figure = tuple[str, str, str, str]


def _filters_pipeline(source: ComponentSpec, count: int) -> PipelineSpec:
    """The history summary and ``count`` live ADQL filters (no sink: the filter stage is what is planned)."""
    return PipelineSpec(
        batch_size=500,
        source=source,
        stages=default_stages(annotators=[ComponentSpec(use="history-summary")], filters=filter_specs(count)),
    )


# (name, night, filters: 0 for the default pipeline, the stages compared: None for the whole chain)
CONFIGURATIONS: list[tuple[str, str, int, str | None]] = [
    ("deep night, default pipeline", "deep", 0, None),
    ("wide night, default pipeline", "wide", 0, None),
    ("100 filters, short night, the filter stage", "short", 100, "filter"),
    ("1,000 filters, short night, the filter stage", "short", 1000, "filter"),
]


def _costs(night: str, filters: int, alerts: int) -> dict[str, float]:
    """CPU seconds per alert of each stage, as ``starling plan`` measures them (no envelope hops: the
    embedded runtime has none, and both sides are measured the same way)."""
    source = ComponentSpec(use="synthetic", config={"alerts": alerts, "history": night})
    spec = _filters_pipeline(source, filters) if filters else default_pipeline(source)
    return measure_costs(spec, source, [])


def plan_figures(quick: bool, console: Console) -> list[Figure]:
    sample = 300 if quick else MEASURED_ALERTS
    figures = []
    for name, night, filters, compared in CONFIGURATIONS:
        started = time.monotonic()
        longer = sample * (5 if night == "deep" else 10)  # a deep alert takes 8 ms to generate
        planned, measured = _costs(night, filters, sample), _costs(night, filters, longer)
        stages = [compared] if compared else list(planned)
        planned_s = sum(planned[s] for s in stages)
        measured_s = sum(measured[s] for s in stages)
        ratio = measured_s / planned_s
        each = ", ".join(f"{s} {planned[s] * 1e6:,.0f}/{measured[s] * 1e6:,.0f}" for s in planned)
        console.print(
            f"plan: {name}: planned {planned_s * 1e6:,.0f} us/alert from {sample:,} alerts, "
            f"measured {measured_s * 1e6:,.0f} on {longer:,} ({ratio:.2f}x; "
            f"{time.monotonic() - started:.0f} s)"
        )
        figures.append(
            (
                f"capacity plan, {name}: cost on {longer:,} alerts vs planned from {sample:,}",
                f"{ratio:.2f}x",
                "0.80-1.20x",
                f"CPU us per alert, planned/measured: {each}",
            )
        )
    return figures
