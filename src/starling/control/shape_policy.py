"""The shape policy: when the controller splits a stage that stays the bottleneck, and fuses it back.

Kept apart from the loop that acts on it (``starling.control.shaper``) so the stored desired pipeline
(``state``) can hold it, and so the decision is a pure function of what was measured.

A stage is **behind** when its consumer-group lag is over ``behind_lag`` and its replicas cannot grow (at
its autoscaling maximum, or without autoscaling). A stage behind for ``split_after_s`` whose heaviest
component (by CPU seconds per alert, as its replicas count them) takes at least ``min_share`` of the stage's
CPU is split: that component moves to a stage of its own right after it, which then scales on its own (it
gets the stage's autoscaling policy). A stage the policy split is fused back once the load has been low
(both lags under ``low_lag``) for ``fuse_after_s``: one hop and one process fewer when they are not needed.
No two decisions come within ``cooldown_s`` of each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ShapePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    behind_lag: int = Field(
        5000, ge=1, description="a stage whose lag is over this (at its most replicas) is behind"
    )
    split_after_s: float = Field(60.0, ge=0.0, le=86_400.0, description="behind this long: split it")
    min_share: float = Field(
        0.4, gt=0.0, le=1.0, description="the share of the stage's CPU its heaviest component must take"
    )
    low_lag: int = Field(100, ge=0, description="a lag under this is a low load")
    fuse_after_s: float = Field(300.0, ge=0.0, le=86_400.0, description="low this long: fuse a split back")
    cooldown_s: float = Field(30.0, ge=0.0, le=86_400.0, description="the least time between two decisions")

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, value: object) -> object:
        # Lax otherwise (JSON's 374.0 is the integer 374), but true is not a number of seconds.
        if isinstance(value, bool):
            raise ValueError("expected a number, not true or false")
        return value


@dataclass(frozen=True, slots=True)
class StageLoad:
    """What was measured of one stage: its lag, whether its replicas can grow, CPU seconds per alert of each
    of its components (the decoder's too, which cannot move), and the components a split may move, in the
    order the stage runs them (its annotators, when it holds nothing else: a split moves the last ones, so
    each still runs after those it ran after; never the first, which stays)."""

    name: str
    lag: int
    can_grow: bool
    costs: dict[str, float]
    movable: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShapeChange:
    kind: str  # "split" or "fuse"
    stage: str
    components: tuple[str, ...]  # what a split moves
    reason: str
    taken_in: str | None = None  # the stage a fuse takes back in


def split_wanted(policy: ShapePolicy, load: StageLoad, behind_for_s: float) -> ShapeChange | None:
    """A split of ``load``'s stage, if it has been behind long enough and its heaviest movable component
    (with those after it) weighs enough."""
    if load.lag <= policy.behind_lag or load.can_grow or behind_for_s < policy.split_after_s:
        return None
    if len(load.movable) < 2:
        return None  # nothing can move out and leave something behind
    total = sum(load.costs.values())
    cut = max(range(1, len(load.movable)), key=lambda i: load.costs.get(load.movable[i], 0.0))
    moved = load.movable[cut:]
    share = sum(load.costs.get(name, 0.0) for name in moved) / total if total > 0 else 0.0
    if share < policy.min_share:
        return None
    heaviest = load.movable[cut]
    reason = (
        f"lag {load.lag} over {policy.behind_lag} for {behind_for_s:.0f} s at its most replicas; "
        f"{', '.join(moved)} take {share:.0%} of its CPU "
        f"({heaviest}: {1000 * load.costs[heaviest]:.3f} ms per alert)"
    )
    return ShapeChange("split", load.name, moved, reason)


def fuse_wanted(
    policy: ShapePolicy, stage: str, split_out: str, lags: tuple[int, int], low_for_s: float
) -> ShapeChange | None:
    """Fusing ``stage`` with ``split_out`` (the stage the policy split from it), if the load has been low
    long enough."""
    if max(lags) >= policy.low_lag or low_for_s < policy.fuse_after_s:
        return None
    low = f"lags {lags[0]} and {lags[1]} under {policy.low_lag} for {low_for_s:.0f} s"
    reason = f"{low}: {split_out} back into {stage}"
    return ShapeChange("fuse", stage, (), reason, taken_in=split_out)
