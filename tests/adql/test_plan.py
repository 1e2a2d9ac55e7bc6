"""Filters of one shape judged together give exactly what each gives alone."""

from __future__ import annotations

import numpy as np

from starling.adql.language import compile_filter
from starling.adql.parse import parse_condition
from starling.adql.plan import FilterPlan, parameterize
from starling.components.annotators.history import HistorySummary, HistorySummaryConfig
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig, BatchColumns, current_catalogue
from starling.core.component import Batch
from tests.support.helpers import synthetic_alerts

EXPRESSIONS = [
    "mag < 18 AND reliability > 0.5",
    "mag < 19.5 AND reliability > 0.2",
    "mag < 17 AND reliability > 0.9",
    "band IN ('g', 'r') AND mag BETWEEN 17 AND 19",
    "band IN ('i', 'z') AND mag BETWEEN 16 AND 20",
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 30))",
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 200, -10, 45))",
    "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 100, 5)) < 40 OR mag < 16.5",
    "survey = 'rubin' AND -mag < -19",
    "survey = 'ztf' AND -mag < -18",
    "ROUND(mag, 1) = 18.5",
    "object_id LIKE 'ZTF%'",
    "history_summary.n_detections >= 3",
    "history_summary.n_detections >= 2",
]


def test_templates_keep_structural_literals() -> None:
    template, values = parameterize(parse_condition("ROUND(mag, 1) < 18.5 AND object_id LIKE 'ZTF%'"))
    assert values == [18.5]
    assert "LIKE 'ZTF%'" in template.sql()
    assert "ROUND(mag, 1)" in template.sql()
    one, _ = parameterize(parse_condition("mag < 18 AND band = 'g'"))
    other, _ = parameterize(parse_condition("mag < 19.5 AND band = 'r'"))
    assert one.sql() == other.sql()


def test_the_plan_matches_each_filter_alone() -> None:
    alerts = synthetic_alerts(2000)
    HistorySummary(HistorySummaryConfig(), "history-summary").annotate(alerts)
    named = [(f"f{i}", e) for i, e in enumerate(EXPRESSIONS)]
    plan = FilterPlan(named, current_catalogue())
    assert len(plan.groups) < len(EXPRESSIONS)  # shapes were grouped
    judgement = plan.judge(BatchColumns(alerts))
    together, counts = judgement.verdicts, judgement.counts()
    for name, expression in named:
        alone = compile_filter(expression).evaluate(BatchColumns(alerts))
        assert np.array_equal(together[name], alone), expression
        assert counts[name] == alone.sum(), expression
        assert 0 < alone.sum() < len(alerts) or "ROUND" in expression or "LIKE" in expression


def test_the_stage_uses_the_plan_and_a_paused_filter_matches_nothing() -> None:
    alerts = synthetic_alerts(500)
    filters = [AdqlFilter(AdqlFilterConfig(expression=e), f"f{i}") for i, e in enumerate(EXPRESSIONS[:3])]
    paused = AdqlFilter(AdqlFilterConfig(expression=EXPRESSIONS[0], paused=True), "paused")
    batch = Batch(alerts)
    AdqlFilter.cooperate(batch, [*filters, paused])
    assert set(batch.shared["filters.verdicts"]) == {"f0", "f1", "f2"}
    for component in [*filters, paused]:
        component.process(batch)
    assert batch.matches["paused"] == []
    for component in filters:
        expected = [a for a, keep in zip(alerts, component.evaluate(alerts), strict=True) if keep]
        assert batch.matches[component.name] == expected


def test_an_embedded_pipeline_judges_after_its_annotators(tmp_path: object) -> None:
    """The filters of a whole chain in one process see what the annotators before them wrote."""
    from pathlib import Path

    from starling.core.embedded import EmbeddedPipeline
    from starling.core.spec import ComponentSpec, PipelineSpec

    assert isinstance(tmp_path, Path)
    spec = PipelineSpec(
        batch_size=100,
        source=ComponentSpec(
            use="synthetic", config={"alerts": 400, "cutouts": False, "alerts_per_visit": 50}
        ),
        annotators=[ComponentSpec(use="history-summary")],
        filters=[
            ComponentSpec(use="adql", name="long", config={"expression": "history_summary.n_detections >= 3"})
        ],
        sinks=[ComponentSpec(use="files", config={"formats": ["jsonl"]})],
    )
    EmbeddedPipeline(spec, tmp_path).run()
    alerts = synthetic_alerts(400)
    expected = {a.alert_id for a in alerts if len(a.history.detections) >= 3}
    assert expected
    import json

    lines = (tmp_path / "matches" / "long.jsonl").read_text().splitlines()
    assert {json.loads(line)["alert_id"] for line in lines} == expected
