"""``adql``: a user's filter, an ADQL expression, as a filter-stage component.

Every ``adql`` filter of a stage reads the same columns of the batch (``Batch.shared``), and shares
the sub-expressions it has in common with the others, so a hundred live filters cost about what
their distinct comparisons cost, column-wise. A paused filter judges nothing. The rate cap holds back
matches past the cap and counts them.

One user's filter never costs another's: a filter whose evaluation raises or goes past its time
budget (``budget_s``, stopped there) matches nothing in that batch, the others are judged as ever,
and after ``max_failing_batches`` such batches in a row it is paused with its reason (``health.py``),
all of it in its counters.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from starling.adql.budget import OwnerShares
from starling.adql.fields import AlertColumns, FieldCatalogue, catalogue
from starling.adql.language import CompiledFilter, compile_filter
from starling.adql.parse import FilterSyntaxError
from starling.adql.plan import Failure, FilterPlan, Judgement, run_filter
from starling.alert.model import Alert
from starling.components.filters.health import FilterHealth
from starling.components.filters.ratecap import RateCap
from starling.components.outputs import Output
from starling.core.component import Batch, Component, ComponentConfig, Filter
from starling.core.matches import Picked

COLUMNS_KEY = "filters.columns"
VERDICTS_KEY = "filters.verdicts"
JUDGEMENT_KEY = "filters.judgement"  # (the columns judged, the Judgement)
SETTLED_KEY = "filters.settled"  # (the alerts judged, each filter's matches among them)


@functools.lru_cache(maxsize=8)
def _plan(filters: tuple[tuple[str, str], ...]) -> FilterPlan:
    """The plan for this set of live filters; made again only when the set changes."""
    return FilterPlan(filters, current_catalogue())


class BatchColumns(AlertColumns):
    """The batch's columns and the memo of sub-expressions, shared by the filters of a stage."""

    def __init__(self, alerts: Sequence[Alert]) -> None:
        super().__init__(alerts)
        self.memo: dict[str, Any] = {}
        self.objects = np.empty(len(alerts), dtype=object)  # to pick each filter's matches in C
        self.objects[:] = alerts


def shared_columns(batch: Batch) -> BatchColumns:
    columns = batch.shared.get(COLUMNS_KEY)
    if columns is None or columns.alerts is not batch.alerts:
        columns = BatchColumns(batch.alerts)
        batch.shared[COLUMNS_KEY] = columns
    return columns


@functools.lru_cache(maxsize=4)
def _catalogue(components: tuple[str, ...]) -> FieldCatalogue:
    return catalogue()


def current_catalogue() -> FieldCatalogue:
    """The field catalogue for the installed annotators (rebuilt when the installed set changes)."""
    from starling.core.registry import available_components

    return _catalogue(tuple(available_components()))


# A batch costs a filter some time whatever its size (reading a column, each numpy call): a share is
# never less, or the small batches of a slow stream would spend it on overheads alone.
SHARE_FLOOR_S = 0.005


@dataclass(frozen=True)
class _Cohort:
    """What a set of live filters needs for each batch, made once per set: a thousand filters then cost
    a batch no pass over their configs."""

    plan: FilterPlan
    budgets: dict[str, float]
    owners: dict[str, str]
    rates: dict[str, float]  # each user's share, in seconds per alert: the smallest its filters declare

    def shares(self, alerts: int) -> OwnerShares:
        """Each user's share of the batch's time; operators have none."""
        seconds = {owner: max(SHARE_FLOOR_S, rate * alerts) for owner, rate in self.rates.items()}
        return OwnerShares(self.owners, seconds)


_COHORTS_REMEMBERED = 8
# Keyed by each live filter's name and config (a change of config makes a new one: configs never change),
# holding the configs, not the filters: a removed filter is not kept alive here.
_COHORTS: OrderedDict[tuple[tuple[str, int], ...], tuple[list[AdqlFilterConfig], _Cohort]] = OrderedDict()


def _cohort(live: Sequence[AdqlFilter]) -> _Cohort:
    key = tuple((p.name, id(p.config)) for p in live)
    found = _COHORTS.get(key)
    if found is not None:
        _COHORTS.move_to_end(key)
        return found[1]
    rates: dict[str, float] = {}
    for component in live:
        owner = component.config.owner
        if owner != "operator":
            rate = component.config.owner_share_ms_per_1000_alerts / 1e6
            rates[owner] = min(rates.get(owner, rate), rate)
    cohort = _Cohort(
        _plan(tuple((p.name, p.config.expression) for p in live)),
        {p.name: p.config.budget_s for p in live},
        {p.name: p.config.owner for p in live},
        rates,
    )
    _COHORTS[key] = ([p.config for p in live], cohort)  # the configs kept: their ids stay theirs
    while len(_COHORTS) > _COHORTS_REMEMBERED:
        _COHORTS.popitem(last=False)
    return cohort


class AdqlFilterConfig(ComponentConfig):
    expression: str = Field(
        min_length=1,
        max_length=20_000,
        description="an ADQL condition, e.g. mag < 19 AND reliability > 0.8 (see `starling filter fields`)",
    )
    description: str = Field("", max_length=2000)
    owner: str = Field("operator", description="who may change it (set by the controller)")
    paused: bool = Field(False, description="a paused filter judges nothing and matches nothing")
    resumed_at: float | None = Field(
        None, description="when its owner last resumed it: a resume also lifts a pause for failures"
    )
    max_per_visit: int | None = Field(None, ge=1, description="matches passed on per exposure, at most")
    max_per_minute: int | None = Field(None, ge=1, description="matches passed on per minute, at most")
    outputs: list[Output] = Field(default_factory=list, description="where the matches go")
    budget_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="seconds of CPU its evaluation may take per batch; past it, it is stopped and "
        "matches nothing in that batch (an overrun)",
    )
    owner_share_ms_per_1000_alerts: float = Field(
        10.0,
        gt=0,
        le=60_000,
        description="the time all of its owner's filters may take together, per 1,000 alerts of a batch "
        "(an operator's filters are not bound by it); past it they are not judged in that batch",
    )
    max_failing_batches: int = Field(
        3, ge=1, le=10_000, description="batches in a row that fail or overrun before it is paused"
    )

    @field_validator("expression")
    @classmethod
    def _compiles(cls, expression: str) -> str:
        try:
            compile_filter(expression, current_catalogue())
        except FilterSyntaxError as exc:
            raise ValueError(str(exc)) from None
        return expression

    @model_validator(mode="after")
    def _one_output_per_kind_and_target(self) -> AdqlFilterConfig:
        keys = [o.model_dump_json() for o in self.outputs]
        if len(set(keys)) != len(keys):
            raise ValueError("the same output is listed twice")
        return self


class AdqlFilter(Filter[AdqlFilterConfig]):
    """A filter written as an ADQL condition over the alert's fields, history and annotations."""

    Config: ClassVar[type[ComponentConfig]] = AdqlFilterConfig

    def __init__(self, config: AdqlFilterConfig, name: str) -> None:
        super().__init__(config, name)
        self.cap = RateCap(config.max_per_visit, config.max_per_minute)
        self.health = FilterHealth(name, config.max_failing_batches)

    @functools.cached_property
    def compiled(self) -> CompiledFilter:
        """This filter alone (the stage judges it with the others, ``cooperate``)."""
        return compile_filter(self.config.expression, current_catalogue())

    @property
    def judging(self) -> bool:
        """Neither paused by its owner nor for failing."""
        return not self.config.paused and not self.health.paused

    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        """For one call outside a stage; a stage goes through ``process`` and the shared columns."""
        return [bool(v) for v in self.compiled.evaluate(BatchColumns(alerts))]

    @classmethod
    def cooperate(cls, batch: Batch, peers: Sequence[Component[Any]]) -> dict[str, Sequence[Alert]]:
        """Judge every live ADQL filter of the stage at once, grouped by shape (``FilterPlan``), and
        settle each: its health, its cap, and its matches, which the chain puts in ``batch.matches``
        when it reaches the filter. A thousand filters then cost the batch a few numpy operations per
        shape and a few attribute updates each, not a call of ``process`` each."""
        filters = [p for p in peers if isinstance(p, AdqlFilter)]
        live = tuple(p for p in filters if p.judging)
        results: dict[str, Sequence[Alert]] = {}
        if len(live) < len(filters):
            results.update((p.name, []) for p in filters if not p.judging)  # paused: no match
        if live and batch.alerts:
            columns = shared_columns(batch)
            cohort = _cohort(live)
            judgement = cohort.plan.judge(columns, cohort.budgets, cohort.shares(len(batch)))
            batch.shared[JUDGEMENT_KEY] = (columns, judgement)
            batch.shared[VERDICTS_KEY] = judgement.verdicts
            objects, verdicts, counts = columns.objects, judgement.verdicts, judgement.counts()
            failures, seconds = judgement.failures, judgement.seconds
            for component in live:
                name = component.name
                component.health.record(failures.get(name), seconds.get(name, 0.0))
                row, count = verdicts.get(name), counts.get(name, 0)
                # No match: an empty list, not a view that keeps the group's (k, n) verdicts alive.
                matched: Sequence[Alert] = Picked(objects, row, count) if row is not None and count else []
                results[name] = component.cap.admit(matched) if component.cap.limited else matched
        else:
            results.update((p.name, []) for p in live)
        batch.shared[SETTLED_KEY] = (batch.alerts, results)
        return results

    def process(self, batch: Batch) -> Batch:
        """This filter alone: the stage settles it in ``cooperate``; a retry or a direct call comes here."""
        settled: tuple[list[Alert], dict[str, Sequence[Alert]]] | None = batch.shared.get(SETTLED_KEY)
        if settled is not None and settled[0] is batch.alerts and self.name in settled[1]:
            batch.matches[self.name] = settled[1][self.name]  # judged in ``cooperate``
            return batch
        if not self.judging or not batch.alerts:
            batch.matches[self.name] = []
            return batch
        columns = shared_columns(batch)
        verdicts, failure, seconds = self._judged(batch, columns)
        self.health.record(failure, seconds)
        if verdicts is None:  # failed in this batch: no match, and the others went on
            batch.matches[self.name] = []
            return batch
        matched: list[Alert] = columns.objects[verdicts].tolist()
        batch.matches[self.name] = self.cap.admit(matched)
        return batch

    def _judged(self, batch: Batch, columns: BatchColumns) -> tuple[Any, Failure | None, float]:
        """Its verdicts from the stage's judgement, else judged alone (a retry, a direct call)."""
        judged: tuple[BatchColumns, Judgement] | None = batch.shared.get(JUDGEMENT_KEY)
        if judged is not None and judged[0] is columns:
            judgement = judged[1]
            seconds = judgement.seconds.get(self.name, 0.0)
            if self.name in judgement.failures:
                return None, judgement.failures[self.name], seconds
            if self.name in judgement.verdicts:
                return judgement.verdicts[self.name], None, seconds
        try:
            compiled = self.compiled
        except Exception as exc:  # refused on arrival; the installed annotators may have changed
            return None, Failure(f"cannot be compiled: {type(exc).__name__}: {exc}"), 0.0
        outcome, seconds = run_filter(compiled, columns, self.config.budget_s)
        if isinstance(outcome, Failure):
            return None, outcome, seconds
        return np.broadcast_to(outcome.true, (len(columns),)), None, seconds

    def counters(self) -> dict[str, Any]:
        return {
            "held_back_by_cap": self.cap.held_back,
            "paused": not self.judging,
            **self.health.counters(),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "expression": self.config.expression,
            "paused": not self.judging,
            "held_back_by_cap": self.cap.held_back,
            "cap_hit": self.cap.hit,
            **self.health.counters(),
        }


def fields_markdown() -> str:
    """The filter language's fields, as the documentation lists them (generated, never hand-edited)."""
    lines = [
        "| field | type | unit | what |",
        "|---|---|---|---|",
    ]
    seen: set[int] = set()
    for field in current_catalogue().all():
        if "-" in field.name:
            continue  # listed once, under its underscore alias
        if id(field) in seen:
            continue
        seen.add(id(field))
        lines.append(f"| `{field.name}` | {field.type} | {field.unit} | {field.description} |")
    return "\n".join(lines) + "\n"
