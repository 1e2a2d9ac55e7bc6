"""``threshold``: each cut against the same cut computed by hand, on a synthetic night of both surveys."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from starling.alert.model import Alert
from starling.components.filters.threshold import ThresholdConfig, ThresholdFilter
from tests.support.helpers import synthetic_alerts


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    return synthetic_alerts(600)


def _judge(alerts: list[Alert], **config: Any) -> list[bool]:
    return list(ThresholdFilter(ThresholdConfig(**config), "t").evaluate(alerts))


def test_each_cut_keeps_exactly_what_it_says(alerts: list[Alert]) -> None:
    assert _judge(alerts, max_mag=19.0) == [a.mag is not None and a.mag < 19.0 for a in alerts]
    assert _judge(alerts, min_reliability=0.8) == [
        a.reliability is not None and a.reliability >= 0.8 for a in alerts
    ]
    assert _judge(alerts, min_detections=3) == [len(a.history.detections) >= 3 for a in alerts]
    assert _judge(alerts, surveys=["rubin"]) == [a.survey == "rubin" for a in alerts]
    assert _judge(alerts, bands=["g"]) == [a.band == "g" for a in alerts]


def test_cuts_combine_and_each_one_matters(alerts: list[Alert]) -> None:
    both = _judge(alerts, max_mag=20.0, surveys=["ztf"])
    assert both == [a.survey == "ztf" and a.mag is not None and a.mag < 20.0 for a in alerts]
    assert 0 < sum(both) < sum(_judge(alerts, surveys=["ztf"]))


def test_no_cut_keeps_everything_and_a_missing_value_fails_its_cut(alerts: list[Alert]) -> None:
    assert all(_judge(alerts))
    without = copy.copy(alerts[0])
    without.mag = None
    assert _judge([without], max_mag=30.0) == [False]
