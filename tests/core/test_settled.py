"""Filters settled together: the chain judges a stage's ADQL filters in one call, keeps their matches as
positions in the batch, and counts each as if it had run alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from starling.alert.model import Alert
from starling.components.filters import adql
from starling.components.filters.adql import AdqlFilter, AdqlFilterConfig
from starling.core.chain import Chain
from starling.core.component import Batch, ComponentConfig, Sink
from starling.core.deadletter import DeadLetterFile
from starling.core.matches import Picked, names_by_alert
from tests.support.helpers import synthetic_alerts

EXPRESSIONS = {
    "bright": "mag < 19",
    "brighter": "mag < 18",
    "reliable": "reliability > 0.7 AND band IN ('g', 'r')",
    "nothing": "mag < -100",
}


class CountingFilter(AdqlFilter):
    """An ADQL filter that counts the calls of its own ``process``."""

    calls: ClassVar[int] = 0

    def process(self, batch: Batch) -> Batch:
        CountingFilter.calls += 1
        return super().process(batch)


def _expected(alerts: list[Alert], expression: str) -> list[Alert]:
    alone = AdqlFilter(AdqlFilterConfig(expression=expression), "alone")
    return [a for a, keep in zip(alerts, alone.evaluate(alerts), strict=True) if keep]


def test_picked_reads_as_the_list_of_its_alerts_in_batch_order() -> None:
    alerts = synthetic_alerts(10)
    objects = np.empty(len(alerts), dtype=object)
    objects[:] = alerts
    verdicts = {"odd": np.arange(10) % 2 == 1, "none": np.zeros(10, dtype=bool)}
    picked = {name: Picked(objects, row, int(row.sum())) for name, row in verdicts.items()}
    odd = alerts[1::2]
    assert len(picked["odd"]) == 5
    assert bool(picked["odd"])
    assert picked["odd"] == odd
    assert list(picked["odd"]) == odd
    assert picked["odd"][0] is alerts[1]
    assert picked["odd"][-1] is alerts[9]
    assert picked["odd"][1:3] == odd[1:3]
    assert len(picked["none"]) == 0
    assert not picked["none"]
    assert picked["none"] == []
    assert picked["odd"] != odd[:4]
    assert isinstance(picked["odd"], Picked)


def test_the_chain_settles_the_filters_in_one_call_and_counts_each(tmp_path: Path) -> None:
    alerts = synthetic_alerts(400)
    filters = [CountingFilter(AdqlFilterConfig(expression=e), name) for name, e in EXPRESSIONS.items()]
    paused = CountingFilter(AdqlFilterConfig(expression="mag < 30", paused=True), "paused")
    chain = Chain([*filters, paused], DeadLetterFile(tmp_path / "dead.jsonl"))
    CountingFilter.calls = 0
    for start in (0, 200):
        batch = chain.run(Batch(alerts[start : start + 200]), {})
        for name, expression in EXPRESSIONS.items():
            assert batch.matches[name] == _expected(batch.alerts, expression), name
        assert batch.matches["paused"] == []
    assert CountingFilter.calls == 0  # judged and settled in cooperate, never one by one
    for name, expression in EXPRESSIONS.items():
        counts = chain.stats.stages[name]
        assert counts.alerts_in == 400  # each batch counted once
        assert counts.alerts_out == len(_expected(alerts, expression))
        assert counts.cpu_s > 0  # its share of the judging
    assert chain.stats.stages["bright"].alerts_out > chain.stats.stages["brighter"].alerts_out > 0
    assert chain.stats.stages["paused"].alerts_out == 0


def test_when_judging_together_fails_each_filter_judges_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_plan(filters: object) -> object:
        raise RuntimeError("the plan could not be made")

    monkeypatch.setattr(adql, "_plan", broken_plan)
    alerts = synthetic_alerts(200)
    filters = [CountingFilter(AdqlFilterConfig(expression=e), name) for name, e in EXPRESSIONS.items()]
    chain = Chain(filters, DeadLetterFile(tmp_path / "dead.jsonl"))
    CountingFilter.calls = 0
    batch = chain.run(Batch(alerts), {})
    assert CountingFilter.calls == len(filters)
    for name, expression in EXPRESSIONS.items():
        assert batch.matches[name] == _expected(alerts, expression), name
        assert chain.stats.stages[name].alerts_in == 200
    assert len(chain.dead_letters) == 0


class SeenBySink(Sink[ComponentConfig]):
    """Records the filters' names it finds in the batch's matches when its turn comes."""

    seen: ClassVar[list[set[str]]] = []

    def write(self, batch: Batch) -> None:
        SeenBySink.seen.append({name for name, matched in batch.matches.items() if matched})


def test_a_component_sees_the_matches_of_the_filters_before_it_only(tmp_path: Path) -> None:
    """In one chain of two stages (embedded), the first stage's sink sees its own filter's matches, not
    those of the second stage's filter, though both were judged together."""
    alerts = synthetic_alerts(200)
    first = AdqlFilter(AdqlFilterConfig(expression="mag < 30"), "first")
    second = AdqlFilter(AdqlFilterConfig(expression="mag < 30"), "second")
    SeenBySink.seen = []
    chain = Chain([first, SeenBySink(ComponentConfig(), "sink"), second], DeadLetterFile(tmp_path / "dead"))
    batch = chain.run(Batch(alerts), {})
    assert SeenBySink.seen == [{"first"}]
    assert set(batch.matches) == {"first", "second"}
    assert len(batch.matches["second"]) == len(batch.matches["first"]) > 0


def test_a_paused_filter_passes_on_no_match_of_its_name(tmp_path: Path) -> None:
    """Matches of its name already in the batch (from an envelope) are replaced by none."""
    alerts = synthetic_alerts(50)
    paused = AdqlFilter(AdqlFilterConfig(expression="mag < 30", paused=True), "paused")
    chain = Chain([paused], DeadLetterFile(tmp_path / "dead"))
    batch = chain.run(Batch(alerts, {"paused": alerts[:3]}), {})
    assert batch.matches["paused"] == []
    assert chain.stats.stages["paused"].alerts_out == 0


def test_a_removed_filter_is_not_kept_alive_by_the_stage(tmp_path: Path) -> None:
    import gc
    import weakref

    alerts = synthetic_alerts(50)
    gone = AdqlFilter(AdqlFilterConfig(expression="mag < 19"), "gone")
    kept = AdqlFilter(AdqlFilterConfig(expression="mag < 20"), "kept")
    Chain([gone, kept], DeadLetterFile(tmp_path / "dead.jsonl")).run(Batch(alerts), {})
    watched = weakref.ref(gone)
    del gone
    gc.collect()
    assert watched() is None
    assert Chain([kept], DeadLetterFile(tmp_path / "dead2.jsonl")).run(Batch(alerts), {}).matches["kept"]


def test_each_alert_carries_the_names_that_matched_it_in_their_order() -> None:
    """The envelope's names, turned around from each filter's matches: a Picked over the batch, a Picked
    over another array of the same alerts, a list (from a capped filter), none."""
    alerts = synthetic_alerts(40)
    objects = np.empty(len(alerts), dtype=object)
    objects[:] = alerts
    shuffled = np.empty(len(alerts), dtype=object)
    shuffled[:] = alerts[::-1]
    odd = np.arange(40) % 2 == 1
    matches: dict[str, Sequence[Alert]] = {
        "odd": Picked(objects, odd, int(odd.sum())),
        "capped": alerts[3:9],
        "none": [],
        "reversed": Picked(shuffled, odd, int(odd.sum())),  # not in the batch's order: read by position
        "first": Picked(objects, np.arange(40) == 0, 1),
    }
    expected: dict[int, list[str]] = {}
    for name, matched in matches.items():  # the plain loop
        for alert in matched:
            expected.setdefault(id(alert), []).append(name)
    carried = names_by_alert(alerts, matches)
    assert carried == [expected.get(id(alert), []) for alert in alerts]
    assert carried[0] == ["reversed", "first"]  # the last alert of the reversed array is the first
    assert carried[3] == ["odd", "capped"]
    assert names_by_alert(alerts, {}) == [[]] * 40
    assert names_by_alert([], matches) == []
